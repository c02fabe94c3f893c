"""Open311 GeoReport v2 for partner towns: a facade over tickets (decision 030)."""
