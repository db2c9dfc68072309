"""Pure signal processing: numpy arrays (or streams of blocks) in, numbers or arrays out.

Nothing here knows about files, databases or processes.

Streaming measurements follow one protocol, so `analyze` can decode a file once and feed
every block to every meter (memory stays bounded at any file length):

    meter = SomeMeter(sample_rate=44100, channels=2, **params)
    for block in blocks:          # float32 arrays of shape (frames, channels), consecutive
        meter.update(block)
    fragment = meter.result()     # JSON-ready dict, merged into the "audio" object

A value that cannot be measured is None, and the group it belongs to then carries a
"reason" string saying why (e.g. shorter than one loudness gating block).
"""
