"""Drop-in REST surfaces over the router's chat turn: Anthropic Messages, OpenAI
Responses and embeddings, each a translator (vendor JSON in, turn events out)."""
