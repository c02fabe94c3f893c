"""The towns' own web pages (decision 025): sites registered per tenant, fetched by the worker,
searchable next to articles, turned into article drafts by editors."""
