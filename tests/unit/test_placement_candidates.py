"""The allocation candidate search over a hand-made index: no database, no HTTP."""

from __future__ import annotations

from mcloud.placement.service import CandidateQuery, Index, Inventory, RequestGroup, _Node, _Search


def index(providers: dict[int, tuple[int | None, set[str], set[int]]], inventories: dict[int, dict[str, int]],
          used: dict[tuple[int, str], int] | None = None) -> Index:
    """providers: id -> (parent, traits, aggregate ids); inventories: id -> {class: total}."""
    idx = Index(1)
    for rid, (parent, traits, aggs) in providers.items():
        root = rid
        while providers[root][0] is not None:
            root = providers[root][0]  # type: ignore[assignment]
        idx.nodes[rid] = _Node(rid, f"uuid-{rid}", parent, root, frozenset(traits), frozenset(aggs))
        idx.by_uuid[f"uuid-{rid}"] = rid
        idx.tree[root].append(rid)
        if parent is not None:
            idx.has_trees = True
        for agg in aggs:
            idx.agg_members[agg].add(rid)
        if "MISC_SHARES_VIA_AGGREGATE" in traits:
            idx.sharing.add(rid)
    for rid, invs in inventories.items():
        for rc, total in invs.items():
            idx.inv[rid][rc] = Inventory(total)
            idx.by_class[rc].append(rid)
    idx.used.update(used or {})
    return idx


def search(idx: Index, *groups: RequestGroup, **kw) -> list[dict[tuple[int, str], int]]:
    cands, _ = _Search(idx, CandidateQuery({g.suffix: g for g in groups}, **kw), -1).run()
    return [c.resources for c in cands]


def test_usage_and_capacity_decide() -> None:
    idx = index({1: (None, set(), set()), 2: (None, set(), set())}, {1: {"VCPU": 4}, 2: {"VCPU": 4}},
                used={(1, "VCPU"): 3})
    assert search(idx, RequestGroup("", {"VCPU": 2})) == [{(2, "VCPU"): 2}]
    assert search(idx, RequestGroup("", {"VCPU": 1})) == [{(1, "VCPU"): 1}, {(2, "VCPU"): 1}]
    assert search(idx, RequestGroup("", {"VCPU": 1}), limit=1) == [{(1, "VCPU"): 1}]


def test_a_tree_combines_its_providers_and_old_versions_do_not() -> None:
    idx = index({1: (None, set(), set()), 2: (1, {"PHYS"}, set()), 3: (1, set(), set())},
                {1: {"VCPU": 8}, 2: {"VF": 2}, 3: {"VF": 2}})
    group = RequestGroup("", {"VCPU": 1, "VF": 1})
    assert search(idx, group) == [{(1, "VCPU"): 1, (2, "VF"): 1}, {(1, "VCPU"): 1, (3, "VF"): 1}]
    assert search(idx, RequestGroup("", {"VCPU": 1, "VF": 1}, required=[frozenset({"PHYS"})])) == \
        [{(1, "VCPU"): 1, (2, "VF"): 1}]
    assert search(idx, group, nested_aware=False) == []


def test_isolate_puts_granular_groups_on_different_providers() -> None:
    idx = index({1: (None, set(), set()), 2: (1, set(), set()), 3: (1, set(), set())},
                {1: {"VCPU": 8}, 2: {"VF": 4}, 3: {"VF": 4}})
    groups = (RequestGroup("", {"VCPU": 1}), RequestGroup("1", {"VF": 1}), RequestGroup("2", {"VF": 1}))
    isolate = search(idx, *groups, group_policy="isolate")
    assert len(isolate) == 2 and all(len(c) == 3 for c in isolate)
    none = search(idx, *groups, group_policy="none")
    assert {(2, "VF"): 2, (1, "VCPU"): 1} in none and {(3, "VF"): 2, (1, "VCPU"): 1} in none and len(none) == 4


def test_sharing_provider_anchors_at_every_tree_of_its_aggregate() -> None:
    idx = index({1: (None, set(), {7}), 2: (None, set(), {7}), 3: (None, set(), set()),
                 4: (None, {"MISC_SHARES_VIA_AGGREGATE"}, {7})},
                {1: {"VCPU": 4}, 2: {"VCPU": 4}, 3: {"VCPU": 4}, 4: {"DISK_GB": 100}})
    assert search(idx, RequestGroup("", {"VCPU": 1, "DISK_GB": 10})) == [
        {(1, "VCPU"): 1, (4, "DISK_GB"): 10}, {(2, "VCPU"): 1, (4, "DISK_GB"): 10}]
    # a disk-only request names the sharing provider once, however many trees it serves
    assert search(idx, RequestGroup("", {"DISK_GB": 10})) == [{(4, "DISK_GB"): 10}]
