from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
SHAPE_CIRCLE: Shape
SHAPE_ELLIPSE: Shape
SHAPE_SQUARE: Shape
SHAPE_TETRACUSPID: Shape
SHAPE_TRIANGLE: Shape
SHAPE_UNSPECIFIED: Shape
STYLE_TRACE: Style
STYLE_UNSPECIFIED: Style
STYLE_WHEELS: Style
VIDEO_SOURCE_CACHED: VideoSource
VIDEO_SOURCE_RENDERED: VideoSource
VIDEO_SOURCE_SHARED: VideoSource
VIDEO_SOURCE_UNSPECIFIED: VideoSource

class AcquireLeaseRequest(_message.Message):
    __slots__ = ["holder", "lease_id", "request_id", "wait"]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    holder: str
    lease_id: str
    request_id: str
    wait: bool
    def __init__(self, holder: _Optional[str] = ..., lease_id: _Optional[str] = ..., wait: bool = ..., request_id: _Optional[str] = ...) -> None: ...

class Appearance(_message.Message):
    __slots__ = ["aliased", "background", "line_width", "pen"]
    ALIASED_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    LINE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    PEN_FIELD_NUMBER: _ClassVar[int]
    aliased: bool
    background: str
    line_width: float
    pen: str
    def __init__(self, background: _Optional[str] = ..., pen: _Optional[str] = ..., line_width: _Optional[float] = ..., aliased: bool = ...) -> None: ...

class Curve(_message.Message):
    __slots__ = ["congruency", "k_fold", "summary", "wheels"]
    CONGRUENCY_FIELD_NUMBER: _ClassVar[int]
    K_FOLD_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WHEELS_FIELD_NUMBER: _ClassVar[int]
    congruency: int
    k_fold: int
    summary: CurveSummary
    wheels: _containers.RepeatedCompositeFieldContainer[Wheel]
    def __init__(self, wheels: _Optional[_Iterable[_Union[Wheel, _Mapping]]] = ..., k_fold: _Optional[int] = ..., congruency: _Optional[int] = ..., summary: _Optional[_Union[CurveSummary, _Mapping]] = ...) -> None: ...

class CurveSummary(_message.Message):
    __slots__ = ["congruency", "k_fold", "shapes", "symmetry", "wheels"]
    CONGRUENCY_FIELD_NUMBER: _ClassVar[int]
    K_FOLD_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    SYMMETRY_FIELD_NUMBER: _ClassVar[int]
    WHEELS_FIELD_NUMBER: _ClassVar[int]
    congruency: int
    k_fold: int
    shapes: _containers.RepeatedScalarFieldContainer[Shape]
    symmetry: int
    wheels: int
    def __init__(self, wheels: _Optional[int] = ..., shapes: _Optional[_Iterable[_Union[Shape, str]]] = ..., k_fold: _Optional[int] = ..., congruency: _Optional[int] = ..., symmetry: _Optional[int] = ...) -> None: ...

class GenerateCurveRequest(_message.Message):
    __slots__ = ["congruency", "k_fold", "seed", "shapes", "wheels"]
    CONGRUENCY_FIELD_NUMBER: _ClassVar[int]
    K_FOLD_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    WHEELS_FIELD_NUMBER: _ClassVar[int]
    congruency: int
    k_fold: int
    seed: int
    shapes: _containers.RepeatedScalarFieldContainer[Shape]
    wheels: int
    def __init__(self, seed: _Optional[int] = ..., wheels: _Optional[int] = ..., k_fold: _Optional[int] = ..., congruency: _Optional[int] = ..., shapes: _Optional[_Iterable[_Union[Shape, str]]] = ...) -> None: ...

class GetVideoRequest(_message.Message):
    __slots__ = ["limit", "offset", "video_id"]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    offset: int
    video_id: str
    def __init__(self, video_id: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ["expire_time", "handle", "holder", "lease_id", "max_expire_time", "ttl"]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    expire_time: _timestamp_pb2.Timestamp
    handle: str
    holder: str
    lease_id: str
    max_expire_time: _timestamp_pb2.Timestamp
    ttl: _duration_pb2.Duration
    def __init__(self, lease_id: _Optional[str] = ..., expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., max_expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., holder: _Optional[str] = ..., handle: _Optional[str] = ...) -> None: ...

class LeaseInfo(_message.Message):
    __slots__ = ["acquire_time", "expire_time", "handle", "holder", "max_expire_time", "rendering"]
    ACQUIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    RENDERING_FIELD_NUMBER: _ClassVar[int]
    acquire_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    handle: str
    holder: str
    max_expire_time: _timestamp_pb2.Timestamp
    rendering: bool
    def __init__(self, handle: _Optional[str] = ..., holder: _Optional[str] = ..., acquire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., max_expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., rendering: bool = ...) -> None: ...

class ListLeasesRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListLeasesResponse(_message.Message):
    __slots__ = ["capacity", "count", "leases", "waiting"]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    count: int
    leases: _containers.RepeatedCompositeFieldContainer[LeaseInfo]
    waiting: int
    def __init__(self, count: _Optional[int] = ..., capacity: _Optional[int] = ..., leases: _Optional[_Iterable[_Union[LeaseInfo, _Mapping]]] = ..., waiting: _Optional[int] = ...) -> None: ...

class MediaChunk(_message.Message):
    __slots__ = ["data", "offset", "segment_end"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_END_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    segment_end: bool
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., segment_end: bool = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ["bytes_sent", "frames_done", "frames_total", "queue_position"]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    bytes_sent: int
    frames_done: int
    frames_total: int
    queue_position: int
    def __init__(self, frames_done: _Optional[int] = ..., frames_total: _Optional[int] = ..., queue_position: _Optional[int] = ..., bytes_sent: _Optional[int] = ...) -> None: ...

class ReleaseLeaseRequest(_message.Message):
    __slots__ = ["lease_id"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class ReleaseLeaseResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class RenderAnimationRequest(_message.Message):
    __slots__ = ["curve", "generate", "lease_id", "resume", "video"]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    curve: Curve
    generate: GenerateCurveRequest
    lease_id: str
    resume: Resume
    video: VideoOptions
    def __init__(self, lease_id: _Optional[str] = ..., curve: _Optional[_Union[Curve, _Mapping]] = ..., generate: _Optional[_Union[GenerateCurveRequest, _Mapping]] = ..., video: _Optional[_Union[VideoOptions, _Mapping]] = ..., resume: _Optional[_Union[Resume, _Mapping]] = ...) -> None: ...

class RenderAnimationResponse(_message.Message):
    __slots__ = ["chunk", "header", "progress", "trailer"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    chunk: MediaChunk
    header: RenderHeader
    progress: Progress
    trailer: RenderTrailer
    def __init__(self, header: _Optional[_Union[RenderHeader, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., chunk: _Optional[_Union[MediaChunk, _Mapping]] = ..., trailer: _Optional[_Union[RenderTrailer, _Mapping]] = ...) -> None: ...

class RenderHeader(_message.Message):
    __slots__ = ["curve", "fps", "frames", "height", "mime_type", "style", "video_id", "width"]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    curve: Curve
    fps: int
    frames: int
    height: int
    mime_type: str
    style: Style
    video_id: str
    width: int
    def __init__(self, curve: _Optional[_Union[Curve, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[int] = ..., frames: _Optional[int] = ..., style: _Optional[_Union[Style, str]] = ..., mime_type: _Optional[str] = ..., video_id: _Optional[str] = ...) -> None: ...

class RenderStillRequest(_message.Message):
    __slots__ = ["appearance", "curve", "frame", "frames", "generate", "height", "style", "width"]
    APPEARANCE_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    appearance: Appearance
    curve: Curve
    frame: int
    frames: int
    generate: GenerateCurveRequest
    height: int
    style: Style
    width: int
    def __init__(self, curve: _Optional[_Union[Curve, _Mapping]] = ..., generate: _Optional[_Union[GenerateCurveRequest, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., style: _Optional[_Union[Style, str]] = ..., frame: _Optional[int] = ..., frames: _Optional[int] = ..., appearance: _Optional[_Union[Appearance, _Mapping]] = ...) -> None: ...

class RenderStillResponse(_message.Message):
    __slots__ = ["curve", "height", "png", "width"]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    curve: Curve
    height: int
    png: bytes
    width: int
    def __init__(self, png: _Optional[bytes] = ..., curve: _Optional[_Union[Curve, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class RenderTrailer(_message.Message):
    __slots__ = ["elapsed", "encode_time", "frames", "render_time", "sha256", "source", "total_bytes", "video_id"]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    ENCODE_TIME_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    RENDER_TIME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    elapsed: _duration_pb2.Duration
    encode_time: _duration_pb2.Duration
    frames: int
    render_time: _duration_pb2.Duration
    sha256: str
    source: VideoSource
    total_bytes: int
    video_id: str
    def __init__(self, total_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., render_time: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., encode_time: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., frames: _Optional[int] = ..., elapsed: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., video_id: _Optional[str] = ..., source: _Optional[_Union[VideoSource, str]] = ...) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ["lease_id"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class Resume(_message.Message):
    __slots__ = ["offset", "video_id"]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    offset: int
    video_id: str
    def __init__(self, video_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class RevokeLeaseRequest(_message.Message):
    __slots__ = ["handle"]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    handle: str
    def __init__(self, handle: _Optional[str] = ...) -> None: ...

class RevokeLeaseResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class VideoOptions(_message.Message):
    __slots__ = ["appearance", "fps", "frames", "height", "style", "width"]
    APPEARANCE_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    appearance: Appearance
    fps: int
    frames: int
    height: int
    style: Style
    width: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[int] = ..., frames: _Optional[int] = ..., style: _Optional[_Union[Style, str]] = ..., appearance: _Optional[_Union[Appearance, _Mapping]] = ...) -> None: ...

class Wheel(_message.Message):
    __slots__ = ["aspect", "frequency", "phase", "radius", "shape"]
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    aspect: float
    frequency: int
    phase: float
    radius: float
    shape: Shape
    def __init__(self, radius: _Optional[float] = ..., frequency: _Optional[int] = ..., phase: _Optional[float] = ..., shape: _Optional[_Union[Shape, str]] = ..., aspect: _Optional[float] = ...) -> None: ...

class Shape(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Style(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class VideoSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
