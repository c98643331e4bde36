"""The login's stylesheet, served from the package."""

from __future__ import annotations

from importlib.resources import files

from litestar import Response, get

_CSS = files("donjon.plugins.login").joinpath("static/login.css")


@get("/ui/login/static/login.css")
async def stylesheet() -> Response[bytes]:
    return Response(
        content=_CSS.read_bytes(),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )
