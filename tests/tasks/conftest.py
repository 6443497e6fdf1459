"""Silence Lightning's advice that does not apply to these tiny in-memory runs."""


def pytest_configure(config):
    for message in (
        ".*does not have many workers.*",
        ".*number of training batches.*",
        ".*GPU available but not used.*",
        ".*no `val_dataloader`.*",
        ".*LeafSpec.*",
        ".*self.trainer` reference is not registered.*",
    ):
        config.addinivalue_line("filterwarnings", f"ignore:{message}")
