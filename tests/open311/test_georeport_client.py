"""The PyPI GeoReport client (`georeport`, a thin wrapper used against US cities' endpoints)
reads our facade over real HTTP, from a real app process, in both of its formats."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from georeport import GeoReport

from backend.settings import Settings
from tests.open311.conftest import BASE, LITTER, POTHOLE, Town, submit
from tests.support.servers import app_process


@pytest.mark.parametrize("output_format", ["json", "xml"])
async def test_the_georeport_client_reads_services_definitions_and_requests(
    client: httpx.AsyncClient, settings: Settings, soest: Town, output_format: str
) -> None:
    created = await submit(client, soest)
    with app_process(settings) as process:
        reader = GeoReport(f"{process.url}{BASE}", jurisdiction=soest.slug, output_format=output_format)
        services = await asyncio.to_thread(reader.get_service_list)
        assert {s["service_code"] for s in services} == {POTHOLE, LITTER}
        definition = await asyncio.to_thread(reader.get_service_definition, LITTER)
        assert definition["service_code"] == LITTER
        one = await asyncio.to_thread(reader.get_service_request, created["service_request_id"])
        assert one["service_request_id"] == created["service_request_id"]
        assert one["status"] == "open" and one["agency_responsible"] == "Bürgerbüro"
        several = await asyncio.to_thread(
            reader.get_service_requests, service_request_id=created["service_request_id"], status="open"
        )
        # xmltodict gives one dict for a single element, a list for several.
        found = several if isinstance(several, list) else [several]
        assert [r["service_request_id"] for r in found] == [created["service_request_id"]]
