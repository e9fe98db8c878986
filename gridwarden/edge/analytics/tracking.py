"""Multi-object tracking in the ByteTrack style: stable ids for detections across frames.

Why ByteTrack's two-stage association: a parked car half hidden by a passer-by drops to a low
detector score. Matching high-confidence detections first and then offering the *low* ones only
to tracks that are still unmatched keeps such objects tracked without letting low-score noise
start new tracks.

Design choices:

* Association is class-agnostic IoU, matched greedily (best IoU first). The COCO model relabels
  a car seen from above as ``bus`` or ``cell_phone`` from frame to frame; the track's class is a
  confidence-weighted majority vote over its life instead.
* Prediction is constant velocity on the box corners (velocity smoothed over observations),
  which is enough to carry two crossing objects past each other and to bridge short gaps.
* Every time in here is *media* time (seconds from the stream's pts). A lost track expires after
  ``lost_timeout_s`` media seconds, so a replay at 10x speed behaves exactly like live.
* Motion gating upstream skips the detector on frames where nothing changed; the pipeline then
  calls :meth:`Tracker.coast`, which keeps visible tracks alive where they were.
* **Persistence counts as much as confidence.** At dusk or in rain a parked car may score 0.3
  frame after frame: below ``new_track_threshold``, so ByteTrack alone would never start a track
  for it. A detection at or above ``persist_threshold`` that neither joins nor starts a
  track becomes a *candidate*; seen at the same place (IoU >= ``persist_iou``) in ``persist_hits`` consecutive
  detector frames, it starts a confirmed track. Moving clutter never overlaps itself that well,
  and one-off noise is dropped on the first frame it is missing.

Example::

    >>> import numpy as np
    >>> from gridwarden.edge.types import Detections
    >>> tracker = Tracker(min_hits=2)
    >>> car = Detections(xyxy=[[10, 10, 50, 30]], confidence=[0.9], class_id=[2])
    >>> len(tracker.update(car, media_time=0.0))  # tentative until seen twice
    0
    >>> out = tracker.update(car, media_time=0.1)
    >>> out.track_id.tolist(), out.class_id.tolist()
    ([1], [2])
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from gridwarden.edge.types import Detections
from gridwarden.geometry import box_iou  # re-exported: the rules import it from here

log = logging.getLogger(__name__)

# Velocity smoothing: weight of the newest observed velocity.
_VELOCITY_GAIN = 0.5
# Never extrapolate a box further than this many seconds of motion: an object that vanished while
# moving may well have stopped behind the occluder.
_MAX_PREDICT_S = 2.0


def greedy_match(score: np.ndarray, valid: np.ndarray) -> list[tuple[int, int]]:
    """Match rows to columns, best score first, each used at most once.

    Greedy rather than Hungarian: scipy is not a dependency, and with IoU scores on a handful of
    boxes the greedy answer is the optimal one in all but contrived cases.
    Returns (row, col) pairs.
    """
    rows, cols = np.nonzero(valid)
    if len(rows) == 0:
        return []
    order = np.argsort(-score[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(r)
        used_cols.add(c)
        pairs.append((r, c))
    return pairs


@dataclass(eq=False)
class Track:
    """One object followed over time. Pixel coordinates, media-time seconds.

    ``class_id`` is the confidence-weighted majority over every detection matched to the track,
    so a car briefly labelled ``bus`` stays a car.
    """

    track_id: int
    xyxy: np.ndarray
    class_id: int
    confidence: float
    first_seen: float
    last_seen: float
    hits: int = 1
    confirmed: bool = False
    lost: bool = False
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.float64))
    _votes: dict[int, float] = field(default_factory=dict, repr=False)
    _history: deque[tuple[float, float, float]] = field(default_factory=deque, repr=False)

    def predict(self, media_time: float) -> np.ndarray:
        """Where the box should be at ``media_time`` under constant velocity (capped horizon)."""
        dt = min(max(media_time - self.last_seen, 0.0), _MAX_PREDICT_S)
        return self.xyxy + self.velocity * dt

    def observe(self, xyxy: np.ndarray, confidence: float, class_id: int, media_time: float) -> None:
        dt = media_time - self.last_seen
        if dt > 1e-6:
            measured = (xyxy - self.xyxy) / dt
            gain = 1.0 if self.hits == 1 else _VELOCITY_GAIN
            self.velocity = (1.0 - gain) * self.velocity + gain * measured
        self.xyxy = xyxy.astype(np.float64)
        self.confidence = float(confidence)
        self.last_seen = media_time
        self.hits += 1
        self.lost = False
        self._vote(class_id, confidence)
        self._remember(media_time)

    def _vote(self, class_id: int, confidence: float) -> None:
        self._votes[class_id] = self._votes.get(class_id, 0.0) + max(float(confidence), 1e-3)
        self.class_id = max(self._votes.items(), key=lambda kv: kv[1])[0]

    def _remember(self, media_time: float) -> None:
        cx = float(self.xyxy[0] + self.xyxy[2]) / 2
        cy = float(self.xyxy[1] + self.xyxy[3]) / 2
        self._history.append((media_time, cx, cy))

    def _trim_history(self, window_s: float) -> None:
        while len(self._history) > 1 and self._history[0][0] < self.last_seen - window_s:
            self._history.popleft()

    def displacement(self, window_s: float) -> float:
        """How far the object moved over the last ``window_s`` media seconds, relative to its size.

        The largest distance between the box centre now and any centre seen within the window,
        divided by the current box diagonal. 0.0 for a parked car, about 1.0 for an object that
        moved by its own length. Relative to size so the same threshold works near and far from
        the camera. The window cannot exceed the tracker's ``motion_window_s`` (older samples are
        dropped).
        """
        if not self._history:
            return 0.0
        hist = np.asarray(self._history, dtype=np.float64)
        recent = hist[hist[:, 0] >= self.last_seen - window_s]
        if len(recent) == 0:
            return 0.0
        w = float(self.xyxy[2] - self.xyxy[0])
        h = float(self.xyxy[3] - self.xyxy[1])
        diag = max(float(np.hypot(w, h)), 1e-6)
        dist = np.hypot(recent[:, 1] - recent[-1, 1], recent[:, 2] - recent[-1, 2])
        return float(dist.max()) / diag


@dataclass(eq=False)
class _Candidate:
    """A moderate-confidence detection seen at one place in consecutive detector frames."""

    xyxy: np.ndarray
    first_seen: float
    hits: int = 0
    confidence: float = 0.0
    votes: dict[int, float] = field(default_factory=dict)
    peak: float = 0.0  # the best score among its sightings

    @classmethod
    def from_track(cls, track: Track) -> _Candidate:
        return cls(
            xyxy=track.xyxy.copy(),
            first_seen=track.first_seen,
            hits=track.hits,
            confidence=track.confidence,
            votes=dict(track._votes),
            peak=track.confidence,
        )

    def add(self, xyxy: np.ndarray, confidence: float, class_id: int) -> None:
        self.xyxy = xyxy.astype(np.float64)
        self.confidence = confidence
        self.peak = max(self.peak, confidence)
        self.hits += 1
        self.votes[class_id] = self.votes.get(class_id, 0.0) + max(confidence, 1e-3)

    @property
    def class_id(self) -> int:
        return max(self.votes.items(), key=lambda kv: kv[1])[0]


class Tracker:
    """ByteTrack-style tracker on :class:`Detections`; see the module docstring.

    Parameters:
        high_threshold: detections at or above this score take part in the first association.
        low_threshold: detections below this are ignored; those between the two thresholds are
            offered only to tracks left unmatched by the first stage (never start a track).
        new_track_threshold: an unmatched high detection starts a track only at this score.
        match_iou: minimum IoU between a track's predicted box and a detection.
        lost_timeout_s: media seconds a track survives without a detection (occlusion bridge).
        min_hits: detections needed before a track is reported (filters one-frame noise).
        motion_window_s: how much centre history a track keeps for :meth:`Track.displacement`.
        persist_threshold: detections at or above this score that neither join nor start a track
            become candidates; 1.0 turns the persistence path off.
        persist_hits: consecutive detector frames a candidate must be seen at one place.
        persist_iou: overlap a candidate needs with itself from one detector frame to the next.
    """

    def __init__(
        self,
        *,
        high_threshold: float = 0.5,
        low_threshold: float = 0.1,
        new_track_threshold: float = 0.5,
        match_iou: float = 0.2,
        lost_timeout_s: float = 5.0,
        min_hits: int = 2,
        motion_window_s: float = 10.0,
        persist_threshold: float = 0.25,
        persist_hits: int = 3,
        persist_iou: float = 0.5,
    ) -> None:
        if not 0.0 <= low_threshold <= high_threshold <= 1.0:
            raise ValueError(
                f"need 0 <= low_threshold <= high_threshold <= 1, got {low_threshold}, {high_threshold}"
            )
        if not 0.0 < match_iou <= 1.0:
            raise ValueError(f"match_iou must be in (0, 1], got {match_iou}")
        if lost_timeout_s < 0 or motion_window_s <= 0:
            raise ValueError("lost_timeout_s must be >= 0 and motion_window_s > 0")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        if not 0.0 < persist_threshold <= 1.0 or persist_hits < 1 or not 0.0 < persist_iou <= 1.0:
            raise ValueError("need 0 < persist_threshold <= 1, persist_hits >= 1 and 0 < persist_iou <= 1")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.new_track_threshold = new_track_threshold
        self.match_iou = match_iou
        self.lost_timeout_s = lost_timeout_s
        self.min_hits = min_hits
        self.motion_window_s = motion_window_s
        self.persist_threshold = persist_threshold
        self.persist_hits = persist_hits
        self.persist_iou = persist_iou
        self.tracks: dict[int, Track] = {}
        self._candidates: list[_Candidate] = []
        self._next_id = 1
        self._last_time: float | None = None

    def reset(self) -> None:
        """Forget every track (ids keep counting up, so they stay unique for this tracker)."""
        self.tracks.clear()
        self._candidates.clear()
        self._last_time = None

    @property
    def pending(self) -> bool:
        """Whether an object is on its way to becoming a track (a tentative track or a candidate):
        the caller should not skip the detector on the next frame."""
        return bool(self._candidates) or any(not t.confirmed for t in self.tracks.values())

    def _check_time(self, media_time: float) -> None:
        if self._last_time is not None and media_time < self._last_time - 1e-6:
            # The stream restarted (new pts origin): old positions and timers are meaningless.
            log.warning("media time went back from %.3f to %.3f; tracks reset", self._last_time, media_time)
            self.reset()
        self._last_time = media_time

    def update(self, detections: Detections, media_time: float) -> Detections:
        """Associate this frame's detections; return the confirmed tracks seen in it.

        The returned rows carry the detection's box and score, the track's id and the track's
        majority class, ordered by track id.
        """
        self._check_time(media_time)
        self._expire(media_time)
        dets = detections
        conf = dets.confidence
        high_idx = np.nonzero(conf >= self.high_threshold)[0]
        low_idx = np.nonzero((conf >= self.low_threshold) & (conf < self.high_threshold))[0]

        track_list = list(self.tracks.values())
        predicted = np.stack([t.predict(media_time) for t in track_list]) if track_list else np.zeros((0, 4))
        matched: dict[int, int] = {}  # track index -> detection index

        # Stage 1: high-confidence detections against every track, lost ones included.
        iou = box_iou(predicted, dets.xyxy[high_idx])
        for ti, di in greedy_match(iou, iou >= self.match_iou):
            matched[ti] = int(high_idx[di])
        unmatched_high = np.setdiff1d(high_idx, np.fromiter(matched.values(), dtype=np.int64))

        # Stage 2: low-confidence detections only for tracks that were visible and are unmatched.
        rest = [i for i, t in enumerate(track_list) if i not in matched and not t.lost and t.confirmed]
        if rest and len(low_idx):
            iou = box_iou(predicted[rest], dets.xyxy[low_idx])
            for ri, di in greedy_match(iou, iou >= self.match_iou):
                matched[rest[ri]] = int(low_idx[di])

        seen_ids: list[int] = []
        for ti, di in matched.items():
            track = track_list[ti]
            track.observe(dets.xyxy[di], float(conf[di]), int(dets.class_id[di]), media_time)
            track._trim_history(self.motion_window_s)
            if track.hits >= self.min_hits:
                track.confirmed = True
            seen_ids.append(track.track_id)

        for i, track in enumerate(track_list):
            if i in matched:
                continue
            if not track.confirmed:
                # One-frame noise: ByteTrack drops it at once. The place is kept as a persistence
                # candidate: at dusk a car's score swings around the start threshold.
                del self.tracks[track.track_id]
                self._candidates.append(_Candidate.from_track(track))
            else:
                track.lost = True

        starters = unmatched_high[conf[unmatched_high] >= self.new_track_threshold]
        for di in starters:
            track = self._start(dets.xyxy[di], float(conf[di]), int(dets.class_id[di]), media_time)
            self._continue_candidate(track)
            seen_ids.append(track.track_id)

        # Whatever scored at least persist_threshold and neither joined nor started a track, less
        # duplicates of a better detection of the same object (the detector's NMS is per class).
        taken = [*matched.values(), *starters.tolist()]
        moderate: list[int] = []
        for i in np.argsort(-conf, kind="stable").tolist():
            if conf[i] < self.persist_threshold or i in taken:
                continue
            kept = dets.xyxy[[*taken, *moderate]]
            if len(kept) and box_iou(dets.xyxy[i : i + 1], kept).max() >= self.persist_iou:
                continue
            moderate.append(i)
        for track in self._persist(dets, moderate, media_time):
            seen_ids.append(track.track_id)

        return self._report(sorted(tid for tid in seen_ids if self.tracks[tid].confirmed))

    def _continue_candidate(self, track: Track) -> None:
        """A new track where a candidate stands takes over its sightings (and so may be confirmed
        at once): the same object, whose score just rose above the start threshold."""
        if not self._candidates:
            return
        iou = box_iou(track.xyxy[None, :], np.stack([c.xyxy for c in self._candidates]))[0]
        best = int(np.argmax(iou))
        if iou[best] < self.persist_iou:
            return
        cand = self._candidates.pop(best)
        track.first_seen = cand.first_seen
        track.hits += cand.hits
        for cls, weight in cand.votes.items():
            track._votes[cls] = track._votes.get(cls, 0.0) + weight
        track.class_id = max(track._votes.items(), key=lambda kv: kv[1])[0]
        track.confirmed = track.hits >= self.min_hits

    def _persist(self, dets: Detections, indices: list[int], media_time: float) -> list[Track]:
        """Advance the candidates with this frame's unclaimed moderate detections; return the
        tracks started from candidates that have now been seen ``persist_hits`` times in a row."""
        boxes = dets.xyxy[indices].astype(np.float64)
        previous = np.stack([c.xyxy for c in self._candidates]) if self._candidates else np.zeros((0, 4))
        iou = box_iou(previous, boxes)
        survivors: list[_Candidate] = []
        used: set[int] = set()
        for ci, bi in greedy_match(iou, iou >= self.persist_iou):
            cand = self._candidates[ci]
            cand.add(boxes[bi], float(dets.confidence[indices[bi]]), int(dets.class_id[indices[bi]]))
            survivors.append(cand)
            used.add(bi)
        for bi in range(len(indices)):
            if bi not in used:
                cand = _Candidate(xyxy=boxes[bi].copy(), first_seen=media_time)
                cand.add(boxes[bi], float(dets.confidence[indices[bi]]), int(dets.class_id[indices[bi]]))
                survivors.append(cand)
        started: list[Track] = []
        self._candidates = []
        for cand in survivors:
            # A tentative track (it once scored a start) needs only min_hits, as it would have
            # with a high score; anything else needs persist_hits sightings in a row.
            needed = self.min_hits if cand.peak >= self.new_track_threshold else self.persist_hits
            if cand.hits < needed:
                self._candidates.append(cand)
                continue
            track = self._start(cand.xyxy, cand.confidence, cand.class_id, media_time)
            track.first_seen = cand.first_seen
            track.hits = cand.hits
            track.confirmed = True
            for cls, weight in cand.votes.items():
                track._votes[cls] = track._votes.get(cls, 0.0) + weight
            track.class_id = max(track._votes.items(), key=lambda kv: kv[1])[0]
            started.append(track)
        return started

    def coast(self, media_time: float) -> Detections:
        """Keep the visible tracks alive at their last box: the detector was skipped because the
        motion gate saw no change. Their velocity is zeroed (nothing moved); lost tracks stay lost
        and keep ageing towards their timeout. Returns the visible confirmed tracks."""
        self._check_time(media_time)
        self._expire(media_time)
        visible: list[int] = []
        for track in self.tracks.values():
            if track.lost or not track.confirmed:
                continue
            track.velocity[:] = 0.0
            track.last_seen = max(track.last_seen, media_time)
            track._remember(media_time)
            track._trim_history(self.motion_window_s)
            visible.append(track.track_id)
        return self._report(sorted(visible))

    def _expire(self, media_time: float) -> None:
        """Drop tracks unseen for longer than the lost timeout, before they can be matched."""
        for tid in [tid for tid, t in self.tracks.items() if media_time - t.last_seen > self.lost_timeout_s]:
            del self.tracks[tid]

    def _start(self, xyxy: np.ndarray, confidence: float, class_id: int, media_time: float) -> Track:
        track = Track(
            track_id=self._next_id,
            xyxy=np.asarray(xyxy, dtype=np.float64).copy(),
            class_id=class_id,
            confidence=confidence,
            first_seen=media_time,
            last_seen=media_time,
            confirmed=self.min_hits <= 1,
        )
        track._vote(class_id, confidence)
        track._remember(media_time)
        self._next_id += 1
        self.tracks[track.track_id] = track
        return track

    def _report(self, track_ids: list[int]) -> Detections:
        if not track_ids:
            return Detections.empty()
        chosen = [self.tracks[tid] for tid in track_ids]
        return Detections(
            xyxy=np.stack([t.xyxy for t in chosen]),
            confidence=np.array([t.confidence for t in chosen]),
            class_id=np.array([t.class_id for t in chosen]),
            track_id=np.array(track_ids),
        )
