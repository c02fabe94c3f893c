"""Several data-modifying statements sent as one (`backend.db.together`, decision 024's
importspeed5 amendment): the XZuFi bulk path writes a message's new-service rows so."""

from __future__ import annotations

import asyncpg
import pytest

from backend.db import together
from tests.support.world import World


def test_statements_together_number_their_parameters_in_turn() -> None:
    sql, arguments = together.combined(
        [("INSERT INTO a (x, y) SELECT $1, $2", [1, 2]), ("INSERT INTO b (z) SELECT $1::text || $1", ["v"])]
    )
    assert sql == (
        "WITH part0 AS (INSERT INTO a (x, y) SELECT $1, $2),\n"
        "part1 AS (INSERT INTO b (z) SELECT $3::text || $3)\nSELECT 1"
    )
    assert arguments == [1, 2, "v"]


async def test_statements_together_write_rows_that_reference_each_other(world: World) -> None:
    """A row may reference a row another part inserts (foreign keys are checked at the end of the
    statement); a failing part leaves nothing of any part."""
    async with world.state.pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMPORARY TABLE parent (id int PRIMARY KEY) ON COMMIT DROP")
        await conn.execute("CREATE TEMPORARY TABLE kid (id int REFERENCES parent) ON COMMIT DROP")
        await together.execute(
            conn,
            [
                ("INSERT INTO kid SELECT unnest($1::int[])", [[1, 2]]),
                None,  # nothing to write of this kind
                ("INSERT INTO parent VALUES ($1), ($2)", [1, 2]),
            ],
        )
        assert await conn.fetchval("SELECT count(*) FROM kid") == 2
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await together.execute(
                    conn, [("INSERT INTO parent VALUES ($1)", [3]), ("INSERT INTO kid VALUES ($1)", [4])]
                )
        assert await conn.fetchval("SELECT count(*) FROM parent") == 2
