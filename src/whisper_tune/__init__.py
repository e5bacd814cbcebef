"""whisper-tune: adapt OpenAI Whisper to a domain and prove the gain.

Pipeline: data -> models -> train -> evaluate -> serve (see README and docs/).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
