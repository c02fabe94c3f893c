"""Settings are validated at start: every bad value named, with what would be right."""

from __future__ import annotations

import base64

import pytest

from backend.settings import SettingsError, load_settings


def test_defaults_are_development_friendly() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.graphql_introspection and settings.graphiql_enabled and settings.dev_signin_enabled
    assert settings.port == 8000 and settings.public_base_url == "http://127.0.0.1:8000"
    assert (settings.rate_limit_per_minute, settings.rate_limit_machine_per_minute) == (600, 6000)
    assert load_settings({"RATE_LIMIT_MACHINE_PER_MINUTE": "12000"}).rate_limit_machine_per_minute == 12000


def test_production_turns_dev_features_off_by_default() -> None:
    settings = load_settings(
        {
            "APP_ENV": "production",
            "DATABASE_URL": "postgresql://db/x",
            "REDIS_URL": "redis://r",
            "SECRETS_KEY": base64.b64encode(bytes(32)).decode(),
            "METRICS_PORT": "9464",
        }
    )
    assert not settings.graphql_introspection
    assert not settings.graphiql_enabled
    assert not settings.dev_signin_enabled


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(
            {
                "APP_ENV": "staging",
                "PORT": "eighty",
                "DB_POOL_MIN": "20",
                "DB_POOL_MAX": "5",
                "DATABASE_URL": "mysql://x",
                "GRAPHIQL_ENABLED": "maybe",
                "LOG_LEVEL": "LOUD",
                "RATE_LIMIT_PER_MINUTE": "0",
                "SECRETS_KEY": "CHANGE-ME",
            }
        )
    message = str(error.value)
    names = ("APP_ENV", "PORT", "DB_POOL_MIN", "DATABASE_URL", "GRAPHIQL_ENABLED", "LOG_LEVEL", "RATE_LIMIT_PER_MINUTE")
    assert "SECRETS_KEY" in message and "CHANGE-ME" not in message  # named, never echoed
    for name in names:
        assert name in message


def test_production_refuses_dev_sign_in_and_missing_services() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"APP_ENV": "production", "DEV_SIGNIN_ENABLED": "true"})
    message = str(error.value)
    assert "DEV_SIGNIN_ENABLED" in message and "REDIS_URL" in message and "DATABASE_URL" in message
    assert "SECRETS_KEY" in message


def test_application_url_uses_the_app_role() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://postgres:secret@db:5432/bs", "DB_APP_PASSWORD": "pw"})
    assert settings.application_database_url == "postgresql://bs_app:pw@db:5432/bs"
    explicit = load_settings({"APP_DATABASE_URL": "postgresql://app@db/bs"})
    assert explicit.application_database_url == "postgresql://app@db/bs"


def test_default_locale_is_german_and_only_a_language_we_have() -> None:
    assert load_settings({}).default_locale == "de"
    assert load_settings({"DEFAULT_LOCALE": "EN"}).default_locale == "en"
    with pytest.raises(SettingsError, match=r"DEFAULT_LOCALE='fr': expected one of de, en"):
        load_settings({"DEFAULT_LOCALE": "fr"})


def test_pool_waits_are_bounded_and_checked() -> None:
    defaults = load_settings({})
    assert (defaults.db_acquire_timeout_seconds, defaults.db_pool_starved_seconds) == (5.0, 30.0)
    tuned = load_settings({"DB_ACQUIRE_TIMEOUT_SECONDS": "0.5", "DB_POOL_STARVED_SECONDS": "20"})
    assert (tuned.db_acquire_timeout_seconds, tuned.db_pool_starved_seconds) == (0.5, 20.0)
    for bad in (
        {"DB_ACQUIRE_TIMEOUT_SECONDS": "forever"},
        {"DB_ACQUIRE_TIMEOUT_SECONDS": "0"},
        {"DB_ACQUIRE_TIMEOUT_SECONDS": "nan"},
        {"DB_POOL_STARVED_SECONDS": "-1"},
    ):
        with pytest.raises(SettingsError) as error:
            load_settings(bad)
        assert next(iter(bad)) in str(error.value)
    # Starved must mean longer than any single request may wait for a connection.
    with pytest.raises(SettingsError) as error:
        load_settings({"DB_ACQUIRE_TIMEOUT_SECONDS": "10", "DB_POOL_STARVED_SECONDS": "5"})
    assert "DB_POOL_STARVED_SECONDS" in str(error.value)


def test_search_retrievers_default_to_both_and_the_e5_re_ranker_only_with_both() -> None:
    # The e5 re-ranker is opt-in (decision 026, 2026-12-07): it needs both retrievers' candidates.
    assert load_settings({}).search_retrievers == ("lexical", "meaning")
    chosen = load_settings({"SEARCH_RETRIEVERS": "lexical, meaning, rerank"}).search_retrievers
    assert chosen == ("lexical", "meaning", "rerank")
    for wrong in ("rerank", "lexical,rerank", "meaning,rerank", "lexical,words", ","):
        with pytest.raises(SettingsError, match="SEARCH_RETRIEVERS"):
            load_settings({"SEARCH_RETRIEVERS": wrong})
