"""The ffmpeg edge of the render farm, one module per concept.

- :mod:`~workers.media.process`: finding and running ffmpeg, its errors, temporary names.
- :mod:`~workers.media.timebase`: frame rates as rationals and MP4 track timescales.
- :mod:`~workers.media.writer`: :class:`PipeWriter`, raw frames into one ffmpeg process.
- :mod:`~workers.media.segment`: :class:`SegmentWriter`, the plain H.264 segment writer.
- :mod:`~workers.media.pipelined`: :class:`PipelinedWriter`, rendering and encoding overlap.
- :mod:`~workers.media.probe`: reading a video's stream summary and counting its frames.
- :mod:`~workers.media.mp4`: an MP4/MOV counted from its sample tables, without a process.
- :mod:`~workers.media.check`: holding a video to what was asked (frames, duration, stream).
- :mod:`~workers.media.join`: the concat demuxer, stream-copy joins.
- :mod:`~workers.media.stills`: PNG files checked by their bytes, without decoding.

``workers.encode`` re-exports the names the rest of the farm has always imported from there.
"""
