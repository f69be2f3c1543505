"""The project's lineage flows forward: every model reads only from the layers below it.

Read from dbt's manifest after `dbt parse` (no warehouse needed). The layer of a model is its folder
under models/ (staging, intermediate, marts, reports); the tier of a mart is its tag, `fact` or
`aggregate`, set in the mart's YAML. The rules:

* sources are read only by staging models; staging models read only sources and seeds;
* no intermediate model reads a mart or a report model;
* fact marts read only staging and intermediate models and seeds;
* aggregate marts may also read fact marts (they summarise the facts), and another aggregate only
  when they declare it as `meta: {rolls_up_from: <aggregate>}` and that one declares none: the weekly
  and monthly conversion rollups sum the daily rollup's conversions and revenue, so all three agree;
* report models (`rpt_*`, folder models/reports/, schema `reports`, views) read only marts,
  intermediate models and seeds, and no model reads them.

A broken rule fails with one line per offending edge: `reader <- read: why`.
"""

from __future__ import annotations

import copy
import json

import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt

LAYERS = ("staging", "intermediate", "marts", "reports")
TIERS = ("fact", "aggregate")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    target = tmp_path_factory.mktemp("lineage")
    result = run_dbt(["parse"], warehouse=target / "parse.duckdb", target_path=target, capture=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return json.loads((target / "manifest.json").read_text())


def _kind(manifest: dict, unique_id: str) -> str:
    """source, seed, staging, intermediate, fact, aggregate or reports (a mart without a tier: 'marts')."""
    if unique_id in manifest["sources"]:
        return "source"
    node = manifest["nodes"][unique_id]
    if node["resource_type"] == "seed":
        return "seed"
    layer = node["fqn"][1] if len(node["fqn"]) > 2 else "(top level)"
    if layer == "marts":
        tiers = [tag for tag in node["tags"] if tag in TIERS]
        return tiers[0] if len(tiers) == 1 else "marts"
    return layer


def _name(manifest: dict, unique_id: str) -> str:
    if unique_id in manifest["sources"]:
        source = manifest["sources"][unique_id]
        return f"source {source['source_name']}.{source['name']}"
    return manifest["nodes"][unique_id]["name"]


def lineage_violations(manifest: dict) -> list[str]:
    """One line per model or edge that breaks a rule of this module's docstring."""
    models = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    problems: list[str] = []
    for uid, node in sorted(models.items()):
        kind = _kind(manifest, uid)
        if kind == "marts":
            problems.append(
                f"{node['name']}: a mart is tagged 'fact' or 'aggregate' (exactly one) in its YAML"
            )
        elif kind not in (*LAYERS, *TIERS):
            problems.append(f"{node['name']}: a model lives in one of models/{{{','.join(LAYERS)}}}/")
        if kind == "reports" or node["name"].startswith("rpt_"):
            config = node["config"]
            if not (
                kind == "reports"
                and node["name"].startswith("rpt_")
                and config["schema"] == "reports"
                and config["materialized"] == "view"
            ):
                problems.append(
                    f"{node['name']}: a report model is named rpt_*, lives in models/reports/ and is a view "
                    f"in schema reports (here: {kind}, schema {config['schema']}, {config['materialized']})"
                )
        rolls_up_from = node["config"].get("meta", {}).get("rolls_up_from")
        parents = [
            p for p in node["depends_on"]["nodes"] if p in manifest["sources"] or p in manifest["nodes"]
        ]
        parent_names = {_name(manifest, p) for p in parents}
        if rolls_up_from is not None and (kind != "aggregate" or rolls_up_from not in parent_names):
            problems.append(
                f"{node['name']}: declares rolls_up_from {rolls_up_from}, which only an aggregate mart reading "
                "that aggregate may declare"
            )
        for parent in sorted(parents):
            parent_kind = _kind(manifest, parent)
            edge = f"{node['name']} <- {_name(manifest, parent)}"
            if parent_kind == "source" and kind != "staging":
                problems.append(f"{edge}: sources are read only by staging models")
            elif kind == "staging" and parent_kind not in ("source", "seed"):
                problems.append(f"{edge}: staging models read only sources and seeds")
            elif kind == "intermediate" and parent_kind in ("fact", "aggregate", "marts", "reports"):
                problems.append(f"{edge}: no intermediate model reads a mart or a report model")
            elif kind == "fact" and parent_kind not in ("staging", "intermediate", "seed"):
                problems.append(f"{edge}: fact marts read only staging and intermediate models and seeds")
            elif kind == "aggregate" and parent_kind not in ("staging", "intermediate", "seed", "fact"):
                parent_node = manifest["nodes"].get(parent, {})
                declared = rolls_up_from == parent_node.get("name")
                chained = parent_node.get("config", {}).get("meta", {}).get("rolls_up_from") is not None
                if parent_kind != "aggregate" or not declared or chained:
                    problems.append(
                        f"{edge}: aggregate marts read staging, intermediate, seeds and fact marts, and another "
                        "aggregate only when declared as meta rolls_up_from (which itself rolls up nothing)"
                    )
            elif kind == "reports" and parent_kind not in ("fact", "aggregate", "intermediate", "seed"):
                problems.append(f"{edge}: report models read only marts, intermediate models and seeds")
            if parent_kind == "reports":
                problems.append(f"{edge}: no model reads a report model")
    return problems


def test_every_model_reads_only_from_the_layers_below_it(manifest: dict) -> None:
    assert lineage_violations(manifest) == []


def test_every_mart_has_a_tier_and_the_tiers_are_the_expected_ones(manifest: dict) -> None:
    tiers = {
        node["name"]: _kind(manifest, uid)
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    }
    assert {name for name, tier in tiers.items() if tier == "fact"} == {
        "conversion_event",
        "conversion_attribution",
        "conversion_funnel",
        "conversion_funnel_attempt",
        "conversion_funnel_step",
        "meta_capi_events",
        "attribution_paths",
        "attribution_paths_non_converting",
    }
    assert {name for name, tier in tiers.items() if tier == "aggregate"} == {
        "conversion_metrics",
        "conversion_rollup_daily",
        "conversion_rollup_weekly",
        "conversion_rollup_monthly",
        "funnel_stats",
        "funnel_stats_breakdown",
        "funnel_time_to_convert",
        "meta_match_quality",
        "person_conversion_summary",
        "attribution_path_summary",
    }


def _with_edge(manifest: dict, reader: str, read: str) -> dict:
    """A copy of the manifest where model `reader` also reads `read` (a model, seed or source name)."""
    changed = copy.deepcopy(manifest)
    by_name = {
        n["name"]: uid for uid, n in changed["nodes"].items() if n["resource_type"] in ("model", "seed")
    }
    by_name |= {f"{s['source_name']}.{s['name']}": uid for uid, s in changed["sources"].items()}
    changed["nodes"][by_name[reader]]["depends_on"]["nodes"].append(by_name[read])
    return changed


@pytest.mark.parametrize(
    ("reader", "read", "message"),
    [
        (
            "conversion_event",
            "raw_meta.meta_delivery_log",
            "conversion_event <- source raw_meta.meta_delivery_log",
        ),
        ("stg_events", "int_touchpoints", "stg_events <- int_touchpoints: staging models read only"),
        (
            "int_attribution_credits",
            "conversion_event",
            "int_attribution_credits <- conversion_event: no intermediate",
        ),
        ("int_touchpoints", "rpt_attribution_by_campaign", "no intermediate model reads a mart or a report"),
        (
            "conversion_attribution",
            "conversion_event",
            "conversion_attribution <- conversion_event: fact marts",
        ),
        (
            "conversion_metrics",
            "conversion_rollup_daily",
            "conversion_metrics <- conversion_rollup_daily: aggregate",
        ),
        ("conversion_rollup_daily", "funnel_stats", "conversion_rollup_daily <- funnel_stats: aggregate"),
        ("rpt_meta_delivery_status", "stg_meta_delivery_log", "report models read only marts"),
        (
            "conversion_metrics",
            "rpt_meta_delivery_status",
            "conversion_metrics <- rpt_meta_delivery_status: no model",
        ),
    ],
)
def test_a_backward_edge_is_named(manifest: dict, reader: str, read: str, message: str) -> None:
    problems = lineage_violations(_with_edge(manifest, reader, read))
    assert any(message in problem for problem in problems), problems


def test_a_rollup_of_a_rollup_is_refused(manifest: dict) -> None:
    """Only one step of rolls_up_from: an aggregate that rolls up the weekly rollup (itself rolled up
    from the daily one) breaks the rule, even when it declares it."""
    changed = _with_edge(manifest, "funnel_stats", "conversion_rollup_weekly")
    uid = next(uid for uid, n in changed["nodes"].items() if n["name"] == "funnel_stats")
    changed["nodes"][uid]["config"]["meta"]["rolls_up_from"] = "conversion_rollup_weekly"
    assert any("funnel_stats <- conversion_rollup_weekly" in p for p in lineage_violations(changed))


def test_a_mart_without_a_tier_is_named(manifest: dict) -> None:
    changed = copy.deepcopy(manifest)
    uid = next(uid for uid, n in changed["nodes"].items() if n["name"] == "funnel_stats")
    changed["nodes"][uid]["tags"] = []
    assert any(p.startswith("funnel_stats: a mart is tagged") for p in lineage_violations(changed))


def test_the_manifest_is_this_projects(manifest: dict) -> None:
    """Guard against a vacuous pass: the parse saw the models the rules are about."""
    names = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {"stg_meta_delivery_log", "int_meta_delivery_state", "int_conversions_valued"} <= names
    layers = {n["fqn"][1] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert set(LAYERS) <= layers
