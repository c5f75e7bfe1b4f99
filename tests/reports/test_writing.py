"""The coach's pure parts on a fixed month: the number check, the fact sheet, each playbook rule, the writer
(against a checked-in text) and the intents of "ask the coach"."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from northstar.core.numbers import tokens, unsupported
from northstar.metrics.facts import CustomerMovement, RangeFacts, TrialMonth
from northstar.reports import coach, playbook, video, writer
from northstar.reports.service import generation
from tests.reports.month import GOAL_ID, HUBSPOT, MARCH, NOW, STRIPE, march

EXPECTED = Path(__file__).parent / "march_2026.txt"
FACTS = march().texts()


def test_numbers_are_read_with_what_they_measure() -> None:
    assert tokens("MRR grew by 2,150.00 USD (4.7 %) to $48,250.00, 3.1x the pipeline, 212 customers in 2026-03") == [
        ("money:USD", "2150.00"),
        ("percent", "4.7"),
        ("money:*", "48250.00"),
        ("times", "3.1"),
        ("plain", "212"),
        ("plain", "2026"),
        ("plain", "3"),
    ]
    assert tokens("H.264 video, Q1 and v2") == []


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("MRR grew by 2,150.00 USD to 48,250.00 USD.", []),
        ("MRR grew by $2,150.00 (4.7 %).", []),
        ("Churn rose to 3.8 % in March 2026.", []),
        ("MRR grew by 2,150 USD.", ["2150 (money:USD)"]),  # same value, other rounding
        ("MRR grew by 2,150.00 EUR.", ["2150.00 (money:EUR)"]),
        ("MRR grew 4.8 % to 48,250.00 USD.", ["4.8 (percent)"]),
        ("212 % of customers stayed.", ["212 (percent)"]),  # a true count is not a percentage
        ("You gained 13 customers.", ["13 (plain)"]),
        ("Expansion of $1,337.00 saved the month.", ["1337.00 (money:*)"]),
    ],
)
def test_a_text_passes_only_with_the_facts_numbers(text: str, wrong: list[str]) -> None:
    assert unsupported(text, FACTS) == wrong


def test_the_fact_sheet_states_each_number_once_and_cites_by_id() -> None:
    sheet = march()
    assert sheet.get("kpi.mrr") is not None
    assert sheet.get("kpi.mrr").text == "MRR in March 2026: 48,250.00 USD, up 2,150.00 USD (4.7 %) from 46,100.00 USD."  # type: ignore[union-attr]
    assert sheet.get("kpi.customer_churn_rate").text == (  # type: ignore[union-attr]
        "Customer churn in March 2026: 3.8 %, up 1.7 points from 2.1 %."
    )
    assert [fact.data["customer"] for fact in sheet.starting("movement.")] == [
        "Acme Corp",
        "Globex",
        "Initech",
        "Umbrella",
        "Hooli",
    ]
    assert sheet.customer_names == ("Acme Corp", "Globex", "Hooli", "Initech", "Umbrella")
    assert sheet.get(f"integration.{HUBSPOT.id}") is not None
    assert sheet.get(f"integration.{STRIPE.id}") is None  # synced two hours ago: nothing to say
    assert len({fact.id for fact in sheet.facts}) == len(sheet.facts)


def test_the_standard_narrative_reads_as_checked_in() -> None:
    sheet = march()
    narrative = writer.write(sheet, playbook.next_steps(sheet))
    assert narrative.text + "\n" == EXPECTED.read_text()
    assert narrative.title == "March 2026 in review"
    assert set(narrative.cites) <= {fact.id for fact in sheet.facts}


@pytest.mark.parametrize("tone", ["upbeat", "neutral"])
@pytest.mark.parametrize("length", ["short", "standard", "detailed"])
def test_every_voice_only_says_numbers_of_the_facts(tone: writer.Tone, length: writer.Length) -> None:
    sheet = march()
    narrative = writer.write(sheet, playbook.next_steps(sheet), tone=tone, length=length)
    assert unsupported(narrative.text, sheet.texts()) == []
    steps = narrative.text.split("\n- ")[1:]
    assert len(steps) == writer.STEPS_SHOWN[length]
    assert narrative.text.startswith("Good month: ") == (tone == "upbeat")


def test_the_lengths_tell_more_or_less() -> None:
    sheet = march()
    steps = playbook.next_steps(sheet)
    short, standard, detailed = (
        writer.write(sheet, steps, length=length).text for length in ("short", "standard", "detailed")
    )
    assert len(short) < len(standard) < len(detailed)
    assert "Acme Corp" not in short and "Acme Corp" in standard and "Hooli" in detailed and "Hooli" not in standard


def test_a_month_without_billing_says_what_to_do() -> None:
    sheet = march(metrics={}, top_movements=[], goals=[], contraction_by_plan={}, trials=[], anomalies=[])
    text = writer.write(sheet, playbook.next_steps(sheet)).text
    assert text.startswith("No MRR for March 2026 yet: connect billing")


def _rules(sheet_steps: list[playbook.Step]) -> dict[str, playbook.Step]:
    return {step.rule: step for step in sheet_steps}


def test_each_rule_fires_on_the_month_and_cites_its_facts() -> None:
    sheet = march()
    fired = _rules(playbook.next_steps(sheet))
    assert set(fired) == {
        "data_health",
        "churn_above_median",
        "goal_at_risk",
        "trial_conversion_falling",
        "pipeline_coverage_low",
        "contraction_in_one_plan",
        "unusual_days",
    }
    assert fired["churn_above_median"].cites == ("kpi.customer_churn_rate", "churn.median", "movement.2", "movement.4")
    assert "Call Globex and Umbrella" in fired["churn_above_median"].action
    assert fired["contraction_in_one_plan"].cites == ("plan.price_scale", "movement.5")
    assert fired["trial_conversion_falling"].cites[0] == "trials.2026-03"
    assert fired["goal_at_risk"].cites == (f"goal.{GOAL_ID}", "kpi.mrr")
    assert fired["pipeline_coverage_low"].cites == ("pipeline", f"goal.{GOAL_ID}")
    assert fired["unusual_days"].cites == ("anomaly.2026-03-18",)
    assert fired["data_health"].cites == (f"integration.{HUBSPOT.id}",)
    assert playbook.next_steps(sheet)[0].rule == "data_health"  # broken data first
    for step in fired.values():
        assert set(step.cites) <= {fact.id for fact in sheet.facts}, step.rule


def _with_goal(status: str, current: int = 4_825_000) -> list[dict[str, object]]:
    [goal] = MARCH.goals
    return [{**goal, "status": status, "current": {**goal["current"], "amount": current}}]


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        (
            "churn_above_median",
            {
                "metrics": {
                    **MARCH.metrics,
                    "customer_churn_rate": dataclasses.replace(MARCH.metrics["customer_churn_rate"], value=2.0),
                }
            },
        ),
        ("churn_above_median", {"churn_history": MARCH.churn_history[:2]}),  # too little history to judge
        ("contraction_in_one_plan", {"contraction_by_plan": {"price_scale": -20_000, "price_basic": -25_000}}),
        ("contraction_in_one_plan", {"contraction_by_plan": {"price_scale": -30_000}}),  # one plan: nothing to compare
        ("trial_conversion_falling", {"trials": [*MARCH.trials[:3], TrialMonth(dt.date(2026, 3, 1), 50, 14)]}),
        ("goal_at_risk", {"goals": _with_goal("on_track")}),
        ("pipeline_coverage_low", {"open_pipeline": 4_000_000}),
        ("pipeline_coverage_low", {"goals": _with_goal("achieved", 6_100_000)}),
        ("unusual_days", {"anomalies": []}),
    ],
)
def test_each_rule_stays_quiet_when_its_facts_are_fine(rule: str, changes: dict[str, object]) -> None:
    assert rule not in _rules(playbook.next_steps(march(**changes)))


def test_a_shrinking_month_and_stale_metrics_are_called_out() -> None:
    sheet = march(mrr_end=4_500_000, problem="No exchange rate for GBP on 2026-03-02")
    fired = _rules(playbook.next_steps(sheet))
    assert "shrinking_month" in fired and "Call Globex, Umbrella and Hooli" in fired["shrinking_month"].action
    assert "stale" in fired["data_health"].cites
    assert "Metrics are out of date: No exchange rate for GBP on 2026-03-02." in writer.write(sheet, []).text


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("Why did MRR drop in March?", "why_changed"),
        ("explain the churn", "why_changed"),
        ("Who are our top customers?", "top_customers"),
        ("which customers churned", "top_customers"),
        ("Will we hit our MRR goal?", "goal_outlook"),
        ("are we on track for the target", "goal_outlook"),
        ("What changed since last week?", "since_last_week"),
        ("hello coach", "overview"),
    ],
)
def test_questions_are_matched_to_intents(question: str, intent: str) -> None:
    assert coach.intent_of(question) == intent


@pytest.mark.parametrize(
    ("question", "month"),
    [
        ("why did MRR drop in March?", dt.date(2026, 3, 1)),
        ("what about December", dt.date(2025, 12, 1)),  # the latest December not after today
        ("why did mrr grow in sept 2025", dt.date(2025, 9, 1)),
        ("explain 2025-11", dt.date(2025, 11, 1)),
        ("why did churn rise last month", dt.date(2026, 3, 1)),
        ("how is this month going", dt.date(2026, 4, 1)),
        ("why did MRR drop?", None),
    ],
)
def test_the_month_a_question_names(question: str, month: dt.date | None) -> None:
    assert coach.month_of(question, dt.date(2026, 4, 15)) == month


def test_why_a_metric_changed_cites_the_movements_behind_it() -> None:
    sheet = march()
    grown = coach.why_changed("why did MRR grow in March?", sheet)
    assert grown.cites == ("kpi.mrr", "movements", "movement.1", "movement.3")  # gains only: Acme, Initech
    churn = coach.why_changed("why did churn go up", sheet)
    assert churn.cites[0] == "kpi.customer_churn_rate" and "movement.2" in churn.cites
    assert unsupported(grown.text + churn.text, sheet.texts()) == []
    dropped = march(metrics={**MARCH.metrics, "mrr": dataclasses.replace(MARCH.metrics["mrr"], previous=5_000_000)})
    fell = coach.why_changed("why did mrr drop?", dropped)
    assert fell.cites == ("kpi.mrr", "movements", "movement.2", "movement.4", "movement.5")  # losses only
    assert "down 1,750.00 USD" in fell.text
    assert unsupported(fell.text, dropped.texts()) == []


def test_top_customers_goal_outlook_and_overview() -> None:
    sheet = march()
    lost = coach.top_customers("which customers churned or downgraded?", sheet)
    assert lost.cites == ("movement.2", "movement.4", "movement.5")
    everyone = coach.top_customers("top customers", sheet)
    assert everyone.cites[0] == "movement.1"
    outlook = coach.goal_outlook("will we hit the MRR goal?", sheet)
    assert outlook.cites == (f"goal.{GOAL_ID}",) and "will not be met" in outlook.text
    none = coach.goal_outlook("will we hit our goal?", march(goals=[]))
    assert none.cites == () and "no goals yet" in none.text
    overview = coach.overview(sheet)
    assert overview.cites == ("kpi.mrr", "movements") and '"why did MRR change?"' in overview.text
    for answer in (lost, everyone, outlook, overview):
        assert unsupported(answer.text, sheet.texts()) == []


def test_since_last_week_states_its_own_facts() -> None:
    recent = RangeFacts(
        start=dt.date(2026, 3, 25),
        end=dt.date(2026, 3, 31),
        currency="USD",
        exponent=2,
        mrr_start=4_700_000,
        mrr_end=4_825_000,
        movements={"new": 150_000, "expansion": 0, "reactivation": 0, "contraction": -25_000, "churn": 0, "fx": 0},
        top_movements=[
            CustomerMovement(dt.date(2026, 3, 27), "new", 150_000, GOAL_ID, "cus_acme", "Acme Corp", ("price_pro",))
        ],
    )
    answer, stated = coach.since_last_week(recent)
    assert answer.intent == "since_last_week" and answer.cites == ("week", "week.movement.1")
    assert answer.text.startswith(
        "MRR from 2026-03-25 to 2026-03-31: 47,000.00 USD to 48,250.00 USD, net +1,250.00 USD"
    )
    assert unsupported(answer.text, [fact.text for fact in stated]) == []
    assert NOW.date() == recent.end


def test_the_videos_narration_says_only_the_facts_numbers() -> None:
    sheet = march()
    steps = playbook.next_steps(sheet)
    narrative = writer.write(sheet, steps)
    written = generation.Written(narrative.title, narrative, list(sheet.facts), steps, "deterministic", (), sheet)
    spec = generation.video_of("monthly_report", sheet.month, NOW.date(), written)
    assert [slide.kind for slide in spec.slides] == ["headline", "mrr_chart", "waterfall", "goals", "recommendations"]
    assert spec.slides[1].narration == "MRR month by month, up to March 2026."
    for slide in spec.slides:
        assert unsupported(slide.narration, sheet.texts()) == [], slide.kind
    [waterfall] = [slide.values for slide in spec.slides if slide.kind == "waterfall"]
    assert isinstance(waterfall, video.Waterfall)
    assert waterfall.start + sum(amount for _, amount in waterfall.steps) == waterfall.end == MARCH.mrr_end
