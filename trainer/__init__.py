"""The trainer: feedback store, dataset building, LoRA fine-tuning, evaluation gate and adapter
registry. Not built yet; it will import schemas and plugins only."""
