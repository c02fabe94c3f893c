"""Every request the service makes on someone's behalf goes out through this package.

Town admins choose URLs the service then fetches (identity issuers and the key documents they
name, webhook endpoints). Without a policy those are a way into our own network: the database,
Redis, a cloud's metadata service. `policy` decides which addresses may be reached;
`client.outbound_client` is the one HTTP client that applies it at connect time. This package
imports neither `backend` nor `auth`, so both can use it (import-linter holds that).
"""

from outbound.client import outbound_client
from outbound.policy import Networks, OutboundPolicy, OutboundRefused, refusal_of

__all__ = ["Networks", "OutboundPolicy", "OutboundRefused", "outbound_client", "refusal_of"]
