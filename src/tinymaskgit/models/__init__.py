"""Pure nn.Modules: no Lightning, no Hydra."""
