"""The investigation eval (`make eval` -> eval/RESULTS.md): ten alerts over the fake
Kubernetes API and a real Prometheus, investigated by the analyzers alone, by a scripted
model (one scenario citing evidence that does not exist) and by the embedded local model,
each result scored and its evidence checked again independently of the service."""
