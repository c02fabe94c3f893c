"""Tickets: forwarding to the town's department with the 24-hour callback promise."""
