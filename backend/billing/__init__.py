"""Billing and 115 figures: tariffs, invoices (XRechnung), cost-based rates, KPIs."""
