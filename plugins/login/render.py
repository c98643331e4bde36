"""Pages: Jinja2 templates (autoescaped) with the org's branding.

Every page extends `base.html`. The branding is the org's name and its label
policy (ZITADEL's branding: the org's own, else the instance's, else the
defaults): light and dark colours as CSS variables (dark ones under
`prefers-color-scheme: dark`), logo and icon (served by the assets endpoint),
the login names without their `@domain` suffix when the policy hides it,
and the "powered by" line unless the policy disables the watermark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Response

from donjon.core.api.settings_branding import asset_path
from donjon.core.identity import orgs, policies
from donjon.core.identity.policy_events import LABEL
from donjon.core.identity.policy_types import LABEL_COLORS, LabelPolicy, is_color

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
    """What a page shows of the org: its name and its label policy."""

    name: str = "donjon"
    policy: LabelPolicy = LabelPolicy()
    logo_url: str = ""
    logo_dark_url: str = ""
    icon_url: str = ""
    icon_dark_url: str = ""

    def color(self, field_name: str) -> str:
        """A colour of the policy, safe in CSS (a stored one is checked; the default else)."""
        value = getattr(self.policy, field_name)
        return value if is_color(value) else getattr(LabelPolicy(), field_name)

    def css(self) -> str:
        """The `:root` variables (light, then dark under prefers-color-scheme)."""
        light = {name: self.color(name) for name in LABEL_COLORS if not name.endswith("_dark")}
        dark = {name: self.color(name + "_dark") for name in light}

        def block(colors: dict[str, str]) -> str:
            return "".join(
                f"--{name.removesuffix('_color')}: {value}; " for name, value in colors.items()
            )

        return (
            f":root {{ {block(light)}}}\n"
            f"@media (prefers-color-scheme: dark) {{ :root {{ {block(dark)}}} }}"
        )

    def login_name(self, name: str) -> str:
        """A login name as pages show it (without `@domain` when the policy hides it)."""
        if self.policy.hide_login_name_suffix and "@" in name:
            return name.rpartition("@")[0]
        return name


async def branding(runtime: Runtime, instance_id: str, org_id: str | None) -> Branding:
    """The org's branding: its name, and the label policy that applies to it."""
    async with runtime.db.read() as conn:
        org = await orgs.get_org(conn, instance_id, org_id) if org_id else None
        found = await policies.resolve(
            conn, instance_id, org_id if org else None, LABEL, runtime.settings
        )
    policy = found.policy
    assert isinstance(policy, LabelPolicy)

    def url(field_name: str) -> str:
        return asset_path(found.owner_id, field_name, getattr(policy, field_name))

    return Branding(
        name=str(org["name"]) if org else "donjon",
        policy=policy,
        logo_url=url("logo"),
        logo_dark_url=url("logo_dark") or url("logo"),
        icon_url=url("icon"),
        icon_dark_url=url("icon_dark") or url("icon"),
    )


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
