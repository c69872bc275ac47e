"""The one test a plugin author adds: every HyperGraph contract check for our modules."""

from hypergraph_example_plugin.modules import LinearProbeModel, StrideTraversal

from hypergraph.testing import parametrize_with_checks


@parametrize_with_checks([StrideTraversal, LinearProbeModel])
def test_contracts(check):  # type: ignore[no-untyped-def]
    check()
