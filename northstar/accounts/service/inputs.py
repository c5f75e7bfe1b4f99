"""What the accounts services take from a client, validated: the request models of the REST routes, which every
other face of these services (the GraphQL API) validates with too, so both accept exactly the same input."""

from northstar.accounts.schemas import OrganizationUpdate, UserUpdateRequest

__all__ = ["OrganizationUpdate", "UserUpdateRequest"]
