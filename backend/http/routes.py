"""Route table repairs applied once the app is built."""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute


def answer_options_for_every_method(app: Litestar) -> None:
    """litestar 2 (issue #4169, fixed only in 3): when one path gets handlers in two steps (two
    controllers, or a controller and the GraphQL router), the automatic OPTIONS handler made with
    the first route keeps reading that route's methods, so `Allow` left out the later ones (16
    of our routes). Point each such handler at the route that serves the path now."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            function = handler.fn
            code = getattr(function, "__code__", None)
            if getattr(function, "__name__", "") != "options_handler" or code is None:
                continue
            for name, cell in zip(code.co_freevars, function.__closure__ or (), strict=True):
                if name == "self" and isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route
