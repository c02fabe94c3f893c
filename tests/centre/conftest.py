"""The centre's tests use the telephony world (demo numbers, 115 area codes)."""

from tests.telephony.conftest import telephony

__all__ = ["telephony"]
