"""The privacy tests use social proof sites as merchants set them up."""

from tests.socialproof.conftest import make_site, site  # noqa: F401 - fixtures shared with the social proof tests
