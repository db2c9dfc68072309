"""audiotrove: analyze, query, restore and cut large collections of recorded sound.

    import audiotrove
    c = audiotrove.open("coll")                      # a collection made with `audiotrove init`
    df = c.frame(where="audio.noise.snr_average < 15")   # pandas, dotted field names as columns
"""
from .api import Collection, open  # noqa: A004 - audiotrove.open is the documented front door

__all__ = ["Collection", "open"]
