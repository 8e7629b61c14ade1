"""params.npz: region-specific prototypes (issue 17) written, read back, checked, and used by region requests."""
import numpy as np
import pytest

from fashionsearchnet.data.synth import synthetic_schema
from fashionsearchnet.errors import BundleError, UsageError
from fashionsearchnet.search.params import SearchParams, load_params, save_params


def _params(region_prototypes=None):
    s = synthetic_schema()
    rng = np.random.default_rng(0)
    D, A = 4, len(s.attributes)
    protos = [rng.normal(size=(len(a.values), D)).astype(np.float32) for a in s.attributes]
    return SearchParams(s, protos, np.ones((A + 1, A), np.float32), rng.normal(size=(A + 1, A * D, 3)).astype(np.float32),
                        0.5, region_prototypes or {})


def test_region_prototypes_round_trip_and_fallback(tmp_path):
    sleeve = np.arange(16 * 4, dtype=np.float32).reshape(16, 4)
    p = _params({"sleeve:color": sleeve})
    save_params(tmp_path / "params.npz", p)
    back = load_params(tmp_path / "params.npz", p.schema)
    assert set(back.region_prototypes) == {"sleeve:color"}
    assert np.array_equal(back.region_prototype("sleeve", "color"), sleeve)
    # a pair without its own prototypes falls back to the attribute's image-level ones
    assert np.array_equal(back.region_prototype("collar", "color"), p.prototypes[p.schema.attr_index("color")])
    # a file written before issue 17 has none
    save_params(tmp_path / "old.npz", {k: v for k, v in p.arrays().items() if not k.startswith("region_")})
    assert load_params(tmp_path / "old.npz", p.schema).region_prototypes == {}


def test_region_prototypes_are_checked(tmp_path):
    with pytest.raises(UsageError, match="not a region pair"):
        _params({"collar:pattern": np.zeros((4, 4), np.float32)})
    with pytest.raises(UsageError, match=r"expected \(16, 4\)"):
        _params({"sleeve:color": np.zeros((15, 4), np.float32)})
    arrays = _params().arrays()
    arrays["region_prototypes_sleeve:color"] = np.zeros((3, 4), np.float32)
    save_params(tmp_path / "bad.npz", arrays)
    with pytest.raises(BundleError, match="bad.npz.*sleeve:color.*re-export"):
        load_params(tmp_path / "bad.npz", _params().schema)
