"""Settings: checks, fault rates and config files."""

import json

import pytest

from batchkit.simulate import SimulatorConfig, SimulatorConfigError
from batchkit.simulate.config import load_config_file, parse_fault_rate


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rpm": 0}, "rpm = 0 must be a positive integer"),
        ({"rpm": "ten"}, "rpm = 'ten' has the wrong type; expected int or null"),
        ({"time_scale": 0}, "time_scale = 0 must be a positive number"),
        ({"fault_rates": {"boom": 0.1}}, "'boom' is not a fault kind"),
        ({"fault_rates": {"500": 0.7, "drop": 0.5}}, "the sum must be <= 1"),
        ({"pad_rate": 2}, "pad_rate = 2 must be a fraction"),
        ({"over_cap": "queue"}, "must be 'reject' (429) or 'pad'"),
        ({"host": "0.0.0.0"}, "is not a loopback address"),
        ({"host": "example.com"}, "is not a loopback address"),
        ({"colour": "red"}, "unknown simulator setting 'colour'"),
    ],
)
def test_replace_rejects_bad_settings(changes, message):
    with pytest.raises(SimulatorConfigError) as caught:
        SimulatorConfig().replace(**changes)
    assert message in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "localhost", "::1"])
def test_loopback_hosts_allowed(host):
    assert SimulatorConfig().replace(host=host).host == host


def test_remote_host_needs_allow_remote():
    config = SimulatorConfig().replace(host="0.0.0.0", allow_remote=True)
    assert config.host == "0.0.0.0"


def test_replace_turns_lists_into_tuples():
    config = SimulatorConfig().replace(models=["a", "b"], batch_fail_lines=["x"])
    assert config.models == ("a", "b")
    assert config.batch_fail_lines == ("x",)


def test_to_dict_masks_api_key():
    assert SimulatorConfig().to_dict()["api_key"] == "***"
    assert SimulatorConfig(api_key=None).to_dict()["api_key"] is None


@pytest.mark.parametrize(
    ("text", "parsed"), [("500=0.02", ("500", 0.02)), ("drop = 1", ("drop", 1.0))]
)
def test_parse_fault_rate(text, parsed):
    assert parse_fault_rate(text) == parsed


@pytest.mark.parametrize("text", ["500", "500=lots"])
def test_parse_fault_rate_rejects(text):
    with pytest.raises(SimulatorConfigError):
        parse_fault_rate(text)


def test_load_config_file_json_and_toml(tmp_path):
    json_file = tmp_path / "sim.json"
    json_file.write_text(json.dumps({"rpm": 60, "fault_rates": {"500": 0.1}}))
    toml_file = tmp_path / "sim.toml"
    toml_file.write_text('rpm = 60\n[fault_rates]\n"500" = 0.1\n')
    for path in (json_file, toml_file):
        config = SimulatorConfig().replace(**load_config_file(path))
        assert config.rpm == 60
        assert config.fault_rates == {"500": 0.1}


def test_load_config_file_errors_name_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[1, 2]")
    with pytest.raises(SimulatorConfigError, match=r"bad\.json"):
        load_config_file(path)
    with pytest.raises(SimulatorConfigError, match=r"missing\.json"):
        load_config_file(tmp_path / "missing.json")
