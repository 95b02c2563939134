"""Provider adapters: one module family per provider API behind `base.ProviderAdapter`.

Only `registry` chooses between families; everything above it speaks the normalised
chat model of `llmgw.common.v1`.
"""
