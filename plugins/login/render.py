"""Pages: Jinja2 templates (autoescaped) with the org's branding.

Every page extends `base.html`. The branding is the org's name and colours;
no label policy exists yet in donjon, so the colours are the defaults below
(`branding` is where a label policy will plug in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Response

from donjon.core.identity import orgs

if TYPE_CHECKING:
    from donjon.core.runtime import Runtime

_env = Environment(
    loader=PackageLoader("donjon.plugins.login", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Headers of every page: no caching of forms, no framing, no scripts.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Branding:
    """What a page shows of the org: its name and colours."""

    name: str = "donjon"
    primary_color: str = "#1f5fa8"
    background_color: str = "#f4f5f7"
    font_color: str = "#1b1d21"
    warn_color: str = "#b3261e"


async def branding(runtime: Runtime, instance_id: str, org_id: str | None) -> Branding:
    """The org's branding (the defaults, named after the org when one is known)."""
    if not org_id:
        return Branding()
    async with runtime.db.read() as conn:
        org = await orgs.get_org(conn, instance_id, org_id)
    return Branding(name=str(org["name"])) if org else Branding()


def page(
    template: str,
    brand: Branding,
    *,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    """The HTML response of `template` rendered with `context` and the branding."""
    html = _env.get_template(template).render(brand=brand, **context)
    return Response(
        content=html,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers=PAGE_HEADERS,
    )
