import json

import pytest

from tfi2i import config as C


def test_override_types_and_nesting():
    cfg = C.Config(loss=C.LossConfig(weights={"l1": 100.0, "g_gan": 1.0}))
    out = C.override(cfg, ["optim.lr=1e-4", "data.batch_size=4", "data.flip=false", "loss.weights.l1=10", "name=x"])
    assert out.optim.lr == 1e-4 and out.data.batch_size == 4 and out.data.flip is False
    assert out.loss.weights == {"l1": 10.0, "g_gan": 1.0} and out.name == "x"
    assert cfg.optim.lr == 2e-4 and cfg.loss.weights["l1"] == 100.0  # frozen: original untouched


@pytest.mark.parametrize(
    "item,message",
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'"),
        ("data.batch_size=four", "expected a value of type int"),
        ("data.flip=maybe", "expected a value of type bool"),
        ("loss.weights.vgg=1", "unknown config key 'loss.weights.vgg'"),
        ("optim=3", "is a group"),
        ("noequals", "key=value"),
    ],
)
def test_override_errors(item, message):
    cfg = C.Config(loss=C.LossConfig(weights={"l1": 100.0}))
    with pytest.raises(C.ConfigError, match=message):
        C.override(cfg, [item])


def test_json_round_trip():
    cfg = C.override(C.Config(loss=C.LossConfig(weights={"l1": 100.0})), ["data.crop_size=128"])
    back = C.from_dict(C.Config, json.loads(C.to_json(cfg)))
    assert back == cfg
    with pytest.raises(C.ConfigError, match="unknown config key 'bogus'"):
        C.from_dict(C.Config, {"bogus": 1})
