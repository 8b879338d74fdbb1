from repro_shared.testing import assert_registers_experiments


def test_installing_the_package_registers_its_experiments():
    assert_registers_experiments("certified-pruning", "certified_pruning")
