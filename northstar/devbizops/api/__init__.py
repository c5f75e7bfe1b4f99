"""DevBizOps routes, one file a part: the engineering report and repositories (``engineering.py``), work items
and their links (``work_items.py``), TechTranslator and agent runs with their proposals (``agents.py``), the
roadmap (``roadmap.py``), and the investor dashboard (``investors.py``)."""

from fastapi import APIRouter

from northstar.devbizops.api import agents, engineering, investors, roadmap, work_items

ROUTERS: tuple[APIRouter, ...] = (
    engineering.router,
    work_items.router,
    agents.router,
    roadmap.router,
    investors.router,
)
