"""Training on top of the core: datamodule, samplers, model (plain nn.Module), CRF, metrics, LightningModule,
callbacks, exact resume and safe checkpoint I/O. Imports torch and Lightning."""
