"""Ten calls for TechTranslator, in the three formats, each with the requirements a careful reader takes from it:
for each, words its title must contain, its priority, and product areas among its components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Expected:
    title: str  # words the title contains (case-insensitive)
    priority: str
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    name: str
    transcript: str
    expected: tuple[Expected, ...]
    options: dict[str, Any] = field(default_factory=dict)


CALLS = (
    Call(
        "discovery call, plain text",
        """Sam (Northstar): Thanks for joining. What does your team need?
Priya (Globex): Honestly, the blocker for us is single sign-on.
Priya (Globex): We need SSO with Okta for all 400 employees before we sign.
Priya (Globex): Every admin must be able to log in through Okta,
and accounts should be removed within 5 minutes of leaving.
Sam (Northstar): Got it, we can look at that.
Dan (Globex): The other thing: is there a way to export the weekly report to CSV so that finance can reconcile it?
Dan (Globex): It would be nice to have a Slack alert when a report is ready, but that's not urgent.
""",
        (
            Expected("single sign-on", "high", ("authentication",)),
            Expected("export the weekly report to csv", "medium", ("data export", "reporting")),
            Expected("slack alert", "low", ("notifications",)),
        ),
        {"customer": "Globex"},
    ),
    Call(
        "renewal call, WebVTT with voices",
        """WEBVTT

00:00:01.000 --> 00:00:05.000
<v Maria Chen>We love the dashboards, truly.</v>

00:00:05.500 --> 00:00:12.000
<v Maria Chen>But we can't renew unless we get an audit log of every change an admin makes.</v>

00:00:12.500 --> 00:00:18.000
<v Maria Chen>Our SOC 2 auditor asks for it every quarter.</v>

00:00:18.500 --> 00:00:22.000
<v Tom (Northstar)>Understood, thank you.</v>
""",
        (Expected("audit log", "high", ("security",)),),
        {"customer": "Initech"},
    ),
    Call(
        "support escalation, SRT",
        """1
00:00:01,000 --> 00:00:04,000
Lee: The dashboard is really slow for us.

2
00:00:04,500 --> 00:00:09,000
Lee: We need reports to load in under 2 seconds, even with 50,000 customers.

3
00:00:09,500 --> 00:00:12,000
Agent: I'll pass that on.
""",
        (Expected("reports to load", "medium", ("performance", "reporting")),),
    ),
    Call(
        "integration request with timestamps",
        """[00:01] Ana (Umbrella): We run everything in Salesforce.
[00:15] Ana (Umbrella): We'd like a two-way sync with Salesforce so that our reps see usage next to the account.
[00:40] Ana (Umbrella): It has to sync at least every hour.
[01:10] Rep (Northstar): Makes sense.
""",
        (Expected("two-way sync with salesforce", "high", ("integrations",)),),
    ),
    Call(
        "only the customer's speakers count",
        """Rep: We could also add a mobile app if you want.
Jordan: What we need is an API to create users from our HR system.
Rep: Sure, we need to check the roadmap.
""",
        (Expected("api to create users", "medium", ("API",)),),
        {"customer_speakers": ["Jordan"]},
    ),
    Call(
        "small talk asks for nothing",
        """Sam: How was the conference?
Kim: Great, lots of people. The weather was lovely too.
Sam: Glad to hear it. Talk next week.
""",
        (),
    ),
    Call(
        "two asks in one turn",
        """Riya (Hooli): Is there a way to filter the customer list by plan? Also we'd love a dark mode, eventually.
""",
        (
            Expected("filter the customer list by plan", "medium", ("search",)),
            Expected("dark mode", "low"),
        ),
    ),
    Call(
        "a request repeated later in the call is one requirement",
        """Omar (Vandelay): We need invoices in euros for our German entity.
Rep (Northstar): Noted.
Omar (Vandelay): Sorry to repeat myself, but we really need invoices in euros for the German entity.
""",
        (Expected("invoices in euros", "medium", ("billing",)),),
    ),
    Call(
        "permissions and webhooks, WebVTT with speaker prefixes",
        """WEBVTT

1
00:00:00.000 --> 00:00:06.000
Zoe: Our contractors should only see the projects they are assigned to.

2
00:00:06.000 --> 00:00:12.000
Zoe: Could you also send a webhook whenever a deal is won?
""",
        (
            Expected("contractors should only see the projects", "medium", ("permissions",)),
            Expected("webhook whenever a deal is won", "medium", ("API",)),
        ),
    ),
    Call(
        "a deal-breaker about data residency",
        """Client CTO: Data residency is a deal-breaker: all our data must stay in the EU.
Client CTO: We'd need encryption at rest with our own keys as well.
Vendor: We'll follow up.
""",
        (
            Expected("data must stay in the eu", "high"),
            Expected("encryption at rest", "medium", ("security",)),
        ),
    ),
)
