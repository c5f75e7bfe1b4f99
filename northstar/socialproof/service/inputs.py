"""What the social proof services take from a client, validated: the request models of the REST routes, which
every other face of these services (the GraphQL API) validates with too, so both accept exactly the same input."""

from northstar.socialproof.schemas.analytics import Granularity
from northstar.socialproof.schemas.sites import (
    NotificationCreate,
    NotificationUpdate,
    SiteCreate,
    SiteUpdate,
    TemplateCreate,
    TemplateUpdate,
)

__all__ = [
    "Granularity",
    "NotificationCreate",
    "NotificationUpdate",
    "SiteCreate",
    "SiteUpdate",
    "TemplateCreate",
    "TemplateUpdate",
]
