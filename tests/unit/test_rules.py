"""`convopt rules` and pipelines.rules: the optimization rules file is only ever written valid and whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.rules import Rule, RuleError, add_rule, disable_rule, read_rules, write_rules

SEED = Path(__file__).resolve().parents[2] / "seeds" / "optimization_rules.csv"
HEADER = "conversion_type,meta_event_name,is_sent,min_value_cents,value_multiplier,action_source,qualifying_sources\n"
runner = CliRunner()


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "optimization_rules.csv"
    path.write_text(
        HEADER
        + "purchase,Purchase,true,1,1.0,website,pixel|capi|webhook\nsignup,CompleteRegistration,true,0,1.0,website,pixel|capi\n"
    )
    return path


def rules_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rules", *args])
    return result.exit_code, result.output


def test_shipped_seed_is_valid_and_covers_every_conversion_type() -> None:
    rules = read_rules(SEED)
    assert {r.conversion_type for r in rules} == {"purchase", "signup", "subscription", "video_render"}
    assert {r.conversion_type: r.meta_event_name for r in rules}["video_render"] == "VideoRender"


def test_list_shows_the_rules(rules_file: Path) -> None:
    code, output = rules_cli("list", "--rules-file", str(rules_file))
    assert code == 0
    assert "Purchase" in output and "signup" in output


def test_add_appends_a_valid_rule(rules_file: Path) -> None:
    code, _ = rules_cli(
        "add",
        "subscription",
        "--event-name",
        "Subscribe",
        "--sources",
        "capi|webhook",
        "--value-multiplier",
        "12",
        "--rules-file",
        str(rules_file),
    )
    assert code == 0
    added = {r.conversion_type: r for r in read_rules(rules_file)}["subscription"]
    assert added == Rule("subscription", "Subscribe", True, 0, 12.0, "website", ("capi", "webhook"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lead", "--event-name", "Lead"], "unknown conversion_type 'lead'"),
        (
            ["subscription", "--event-name", "Subscribe", "--action-source", "web"],
            "unknown action_source 'web'",
        ),
        (
            ["subscription", "--event-name", "Subscribe", "--min-value-cents", "-1"],
            "min_value_cents must be >= 0",
        ),
        (
            ["subscription", "--event-name", "Subscribe", "--value-multiplier", "-0.5"],
            "value_multiplier must be",
        ),
        (
            ["subscription", "--event-name", "Subscribe", "--sources", "pixel|email"],
            "unknown conversion source 'email'",
        ),
        (["subscription", "--event-name", "Bad Name"], "invalid meta_event_name"),
        (
            [
                "purchase",
                "--event-name",
                "Purchase",
                "--min-value-cents",
                "1",
                "--sources",
                "pixel|capi|webhook",
            ],
            "duplicate rule",
        ),
        (["purchase", "--event-name", "Purchase", "--min-value-cents", "900"], "contradictory rule"),
        (["subscription", "--event-name", "Purchase"], "meta_event_name 'Purchase' is already used"),
    ],
)
def test_add_rejects_invalid_rules_in_one_line_with_exit_2(
    rules_file: Path, args: list[str], message: str
) -> None:
    before = rules_file.read_bytes()
    code, output = rules_cli("add", *args, "--rules-file", str(rules_file))
    assert code == 2
    assert message in output
    assert len(output.strip().splitlines()) == 1
    assert rules_file.read_bytes() == before


def test_add_with_replace_changes_the_existing_rule(rules_file: Path) -> None:
    code, _ = rules_cli(
        "add",
        "purchase",
        "--event-name",
        "Purchase",
        "--min-value-cents",
        "900",
        "--replace",
        "--rules-file",
        str(rules_file),
    )
    assert code == 0
    rules = read_rules(rules_file)
    assert [r.conversion_type for r in rules] == ["purchase", "signup"]
    assert rules[0].min_value_cents == 900


def test_disable_sets_is_sent_false(rules_file: Path) -> None:
    code, _ = rules_cli("disable", "signup", "--rules-file", str(rules_file))
    assert code == 0
    assert {r.conversion_type: r.is_sent for r in read_rules(rules_file)} == {
        "purchase": True,
        "signup": False,
    }


def test_disable_of_a_type_without_rule_is_exit_2(rules_file: Path) -> None:
    code, output = rules_cli("disable", "video_render", "--rules-file", str(rules_file))
    assert code == 2
    assert "no rule for conversion_type 'video_render'" in output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("purchase,Purchase,yes,0,1.0,website,capi\n", "is_sent must be true or false"),
        ("purchase,Purchase,true,ten,1.0,website,capi\n", "min_value_cents must be an integer"),
        (
            "purchase,Purchase,true,0,1.0,website,capi\npurchase,Purchase,true,0,1.0,website,capi\n",
            "duplicate rule",
        ),
        ("purchase,Purchase,true,0,1.0,website\n", "expected 7 fields"),
    ],
)
def test_list_rejects_a_hand_edited_invalid_file(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(HEADER + body)
    code, output = rules_cli("list", "--rules-file", str(path))
    assert code == 2
    assert message in output


def test_write_is_atomic_and_leaves_no_temporary_file(
    rules_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rules_file.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("pipelines.rules.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        disable_rule(rules_file, "signup")
    assert rules_file.read_bytes() == before
    assert [p.name for p in rules_file.parent.iterdir()] == [rules_file.name]


def test_invalid_rules_are_never_written(rules_file: Path) -> None:
    rules = read_rules(rules_file)
    with pytest.raises(RuleError, match="contradictory"):
        write_rules(rules_file, [*rules, Rule("purchase", "Purchase", False, 0, 1.0, "website", ("capi",))])
    with pytest.raises(RuleError, match="unknown action_source"):
        add_rule(rules_file, Rule("subscription", "Subscribe", True, 0, 1.0, "mail", ("capi",)))
    assert read_rules(rules_file) == rules


# -- app rules: Meta rejects an app event without app_data, which convopt does not build ---------------


def test_add_refuses_a_sent_app_rule_naming_what_is_missing(rules_file: Path) -> None:
    before = rules_file.read_bytes()
    code, output = rules_cli(
        "add",
        "video_render",
        "--event-name",
        "VideoRender",
        "--action-source",
        "app",
        "--rules-file",
        str(rules_file),
    )
    assert code == 2
    assert "action_source app cannot be sent" in output and "app_data" in output
    assert "advertiser_tracking_enabled" in output and "is_sent to false" in output
    assert rules_file.read_bytes() == before


def test_an_app_rule_that_is_not_sent_is_accepted(rules_file: Path) -> None:
    code, _ = rules_cli(
        "add", "video_render", "--event-name", "VideoRender", "--action-source", "app", "--not-sent",
        "--rules-file", str(rules_file),
    )  # fmt: skip
    assert code == 0
    assert {r.conversion_type: r for r in read_rules(rules_file)}["video_render"].is_sent is False


def test_a_hand_edited_sent_app_rule_is_refused_and_can_be_disabled(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(HEADER + "video_render,VideoRender,true,0,1.0,app,capi\n")
    with pytest.raises(RuleError, match=r"rules\.csv:2: action_source app cannot be sent"):
        read_rules(path)
    assert rules_cli("list", "--rules-file", str(path))[0] == 2
    assert [r.is_sent for r in disable_rule(path, "video_render")] == [False]
    assert [r.is_sent for r in read_rules(path)] == [False]


def test_the_api_refuses_a_sent_app_rule(tmp_path: Path, rules_file: Path) -> None:
    from pipelines.api.reads import ApiUsageError
    from pipelines.api.service import ApiContext, create_optimization_rule

    ctx = ApiContext(warehouse=tmp_path / "wh.duckdb", landing=tmp_path / "landing", rules_file=rules_file)
    before = rules_file.read_bytes()
    rule = {"conversion_type": "video_render", "meta_event_name": "VideoRender", "action_source": "app"}
    with pytest.raises(ApiUsageError, match="action_source app cannot be sent"):
        create_optimization_rule(ctx, rule)
    assert rules_file.read_bytes() == before
    ldu = {"conversion_type": "subscription", "meta_event_name": "Subscribe", "limited_data_use": True}
    answer = create_optimization_rule(ctx, ldu)
    assert {r["conversion_type"]: r["limited_data_use"] for r in answer.data} == {
        "purchase": False,
        "signup": False,
        "subscription": True,
    }
    with pytest.raises(ApiUsageError, match="limited_data_use: expected a bool"):
        create_optimization_rule(ctx, {**ldu, "limited_data_use": "yes"}, replace=True)


# -- Limited Data Use per rule ---------------------------------------------------------------------------


def test_a_file_without_limited_data_use_reads_as_false_and_is_written_with_it(rules_file: Path) -> None:
    assert [r.limited_data_use for r in read_rules(rules_file)] == [False, False]
    code, _ = rules_cli(
        "add",
        "subscription",
        "--event-name",
        "Subscribe",
        "--limited-data-use",
        "--rules-file",
        str(rules_file),
    )
    assert code == 0
    lines = rules_file.read_text().splitlines()
    assert lines[0] == HEADER.strip() + ",limited_data_use"
    assert lines[1].endswith(",false") and lines[3].endswith(",true")
    assert {r.conversion_type: r.limited_data_use for r in read_rules(rules_file)}["subscription"] is True


def test_an_invalid_limited_data_use_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(HEADER.strip() + ",limited_data_use\npurchase,Purchase,true,1,1.0,website,capi,maybe\n")
    with pytest.raises(RuleError, match=r"rules\.csv:2: limited_data_use must be true or false, got 'maybe'"):
        read_rules(path)
