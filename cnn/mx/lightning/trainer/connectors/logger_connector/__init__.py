"""Mirror of lightning.pytorch.trainer.connectors.logger_connector."""
