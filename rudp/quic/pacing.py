"""The pacer: spreads a connection's packets over the round trip (RFC 9002 §7.7).

Owns a token bucket refilled at the pacing rate, with a small burst allowance. The rate comes from the
congestion controller's :meth:`~rudp.quic.congestion.CongestionController.pacing_rate` when it has a
preference, otherwise from ``N * cwnd / smoothed_rtt`` (RFC 9002 §7.7), N being the controller's
``window_pacing_gain()`` (NewReno and CUBIC: 2 in slow start, where the window doubles each round trip,
1.25 in congestion avoidance; as Linux's tcp_update_pacing_rate) or 1.25 for a controller without one.
A pacer slower than the window grows would spread each round over more than a round trip: with N = 1.25
in slow start, a request/response round of about one window left at 14 of a 20 Mbit/s link's Mbit/s.
A controller opts out by returning ``math.inf``; ``Config(pacing=False)`` turns the pacer off for the
connection.

For a window-based controller the bucket also refills, while the sender is idle or limited by the
application or the window, up to the initial window (RFC 9002 §7.7: bursts SHOULD be limited to the
initial window): a round that starts after a pause leaves its first initial window at once, not at
the paced rate.

It does not own timers or sending: the connection asks :meth:`Pacer.allows` before building a packet
that carries new data, charges what it sent with :meth:`Pacer.on_sent`, and arms ``Timer.PACING`` at
:meth:`Pacer.next_send_at` when the pacer said no. Nothing here reads a clock or sleeps.

The pacer fits the clock of whoever drives it: ``Config.timer_granularity`` (``granularity`` here) is
the shortest wait the event loop honours (1 ms: epoll timeouts and libuv/uvloop's clock are whole
milliseconds). :meth:`Pacer.next_send_at` never asks for a wake-up closer than one granularity after the
refusal, and the bucket holds at least what the rate sends in two granularities (one late tick absorbed),
so each timer firing releases a burst instead of one packet, and a loop whose timers cannot fire
sooner never spins on wake-ups that send nothing.

A rate-based controller (BBR) is paced at its own rate, and that rate is its model of the path: what it
sends is what it measures next. So when its pacing timer fires late, the bucket may also hold what the
rate would have sent during the lateness (at most ``MAX_CATCH_UP`` seconds of it, and half the window):
otherwise late wake-ups lower the rate actually sent, and BBR takes its own timer lateness for the
path's bandwidth (on the emulator, under load, it sent 11 of a modelled 21 Mbit/s). Window-based
controllers, whose rate has 25-100% of slack, make up nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from rudp.quic.congestion.base import BaseCongestionController, initial_window
from rudp.quic.rtt import K_GRANULARITY

if TYPE_CHECKING:
    from rudp.quic.congestion.base import CongestionController
    from rudp.quic.rtt import RttEstimator

K_PACING_GAIN: Final = 1.25
"""N in ``rate = N * cwnd / smoothed_rtt`` (RFC 9002 §7.7) for a controller without a
``window_pacing_gain()`` of its own."""
BURST_INTERVAL: Final = 0.002
"""The burst allowance is what the rate sends in this many seconds (quinn's 2 ms), or in two timer
granularities if that is longer, clamped to the bounds below."""
DEFAULT_TIMER_GRANULARITY: Final = 0.001
"""The default shortest timer wait, seconds (``Config.timer_granularity``)."""
MIN_BURST_PACKETS: Final = 2
"""Smallest burst allowance, in max-size datagrams."""
MAX_BURST_PACKETS: Final = 10
"""Largest burst allowance, in max-size datagrams (an initial window, RFC 9002 §7.7), unless the rate
sends more than that in two timer granularities: then up to half the congestion window, since a smaller
bucket would cap the rate at ``bucket / granularity`` whenever timers, not ACKs, clock the sending."""
MAX_BURST_CWND_FRACTION: Final = 0.5
"""The burst allowance above ``MAX_BURST_PACKETS`` is at most this fraction of the congestion window."""
MAX_CATCH_UP: Final = 0.01
"""Lateness of a pacing wake-up (seconds) that a controller's own pacing rate may make up in one burst."""
_INF: Final = math.inf
_SLACK_BYTES: Final = 1.0
"""Tolerance so a timer armed at :meth:`Pacer.next_send_at` is never refused by float rounding."""


class Pacer:
    """A token bucket for one path.

    Before the first RTT sample the pacer lets everything through (the rate would be a guess from the
    initial RTT, RFC 9002 §7.7 paces from ``smoothed_rtt``). The bucket never holds more than
    :attr:`burst_bytes`, so after an idle period at most one burst leaves at once.
    """

    __slots__ = (
        "_gain_of",
        "_initial_window",
        "_last_at",
        "_model_of",
        "_own_rate",
        "_steady_window",
        "_tokens",
        "_wake_at",
        "burst_bytes",
        "enabled",
        "granularity",
        "max_datagram_size",
        "rate",
    )

    def __init__(
        self,
        max_datagram_size: int,
        *,
        enabled: bool = True,
        granularity: float = DEFAULT_TIMER_GRANULARITY,
    ) -> None:
        self.enabled = enabled
        self.granularity = max(granularity, 0.0)
        """The shortest wait :meth:`next_send_at` asks for, seconds (the driver's timer granularity)."""
        self.max_datagram_size = max_datagram_size
        self._initial_window = float(initial_window(max_datagram_size))
        """RFC 9002 §7.2's initial window for :attr:`max_datagram_size` (the bucket's refill ceiling)."""
        self.rate = math.inf
        """The last pacing rate used, bytes per second (``inf``: not pacing)."""
        self.burst_bytes = float(MAX_BURST_PACKETS * max_datagram_size)
        """The current burst allowance (bucket capacity), bytes."""
        self._tokens = self.burst_bytes
        self._last_at: float | None = None
        self._wake_at: float | None = None
        self._steady_window: float | None = None
        """The congestion window the last :meth:`allows` derived its rate from, when that rate is the
        window's (not the controller's own, which may move as packets leave): see :meth:`allows_again`."""
        self._model_of: CongestionController | None = None
        """The controller :attr:`_own_rate` and :attr:`_gain_of` were looked up on (see :meth:`_rate`)."""
        self._own_rate: Callable[[RttEstimator], float | None] | None = None
        self._gain_of: Callable[[], float] | None = None

    def use_datagram_size(self, size: int) -> None:
        """The path's datagrams are now ``size`` bytes (its PMTU search moved): the pacer's unit."""
        self.max_datagram_size = size
        self._initial_window = float(initial_window(size))

    @staticmethod
    def burst_allowance(
        rate: float,
        max_datagram_size: int,
        granularity: float = DEFAULT_TIMER_GRANULARITY,
        congestion_window: float = 0.0,
    ) -> float:
        """The bucket capacity for ``rate`` bytes/s: what it sends in ``max(BURST_INTERVAL, 2 *
        granularity)``, at least ``MIN_BURST_PACKETS``; at most ``MAX_BURST_PACKETS``, or, when two
        granularities of the rate are more than that, half the ``congestion_window`` (not less than
        ``MAX_BURST_PACKETS``)."""
        # min() and max() as comparisons, with the builtins' answers (their argument parsing costs
        # more than the arithmetic; the pacer is asked per train and per datagram of the general path).
        ticks = 2 * granularity
        low = MIN_BURST_PACKETS * max_datagram_size
        high = float(MAX_BURST_PACKETS * max_datagram_size)
        spread = rate * ticks
        if spread > high:
            cap = MAX_BURST_CWND_FRACTION * congestion_window
            if cap < spread:
                spread = cap
            if spread > high:
                high = spread
        burst = rate * (ticks if ticks > BURST_INTERVAL else BURST_INTERVAL)
        if low > burst:
            burst = low
        return float(high if high < burst else burst)

    @staticmethod
    def window_gain(congestion: CongestionController) -> float:
        """N in ``N * cwnd / smoothed_rtt`` for ``congestion`` (RFC 9002 §7.7): its own
        ``window_pacing_gain()`` (optional, like ``set_app_limited``), else :data:`K_PACING_GAIN`."""
        gain_of = getattr(congestion, "window_pacing_gain", None)
        return float(gain_of()) if callable(gain_of) else K_PACING_GAIN

    def current_rate(self, congestion: CongestionController, rtt: RttEstimator) -> float:
        """The rate the pacer would use now, bytes/s (``inf`` when not pacing)."""
        return self._rate(congestion, rtt, congestion.congestion_window)[0]

    def _rate(self, congestion: CongestionController, rtt: RttEstimator, window: int) -> tuple[float, bool]:
        """(the rate, True if the controller chose it); ``window``: the controller's window now."""
        if not self.enabled or not rtt.has_sample:
            return _INF, False
        if congestion is not self._model_of:
            # Look up, once per controller (the pacer is asked per packet), its ``pacing_rate`` unless
            # it is the base class's (always None) and its optional ``window_pacing_gain``; these are
            # methods of the controller, so the answers they give stay current (inline: once per
            # connection, no function of its own).
            self._model_of = congestion
            rate_of = congestion.pacing_rate
            base_rate = getattr(rate_of, "__func__", None) is BaseCongestionController.pacing_rate
            self._own_rate = None if base_rate else rate_of
            gain_of = getattr(congestion, "window_pacing_gain", None)
            self._gain_of = gain_of if callable(gain_of) else None
        own_rate = self._own_rate
        rate = None if own_rate is None else own_rate(rtt)
        if rate is None:
            srtt = rtt.smoothed_rtt
            if srtt < K_GRANULARITY:
                srtt = K_GRANULARITY
            gain_of = self._gain_of  # (window_gain, without its lookups)
            rate = (K_PACING_GAIN if gain_of is None else float(gain_of())) * window / srtt
            return (rate, False) if rate > 0 else (_INF, False)
        return (rate, True) if rate > 0 else (_INF, False)

    def allows(self, now: float, size: int, congestion: CongestionController, rtt: RttEstimator) -> bool:
        """Refill the bucket up to ``now`` and say whether a ``size``-byte packet may leave now."""
        window = congestion.congestion_window  # (read once: sending does not move it)
        rate, own = self._rate(congestion, rtt, window)
        self.rate = rate
        self._steady_window = None if own else window
        wake, self._wake_at = self._wake_at, None
        if rate == _INF:
            self._last_at = now
            return True
        capacity = self.burst_allowance(rate, self.max_datagram_size, self.granularity, window)
        self.burst_bytes = capacity
        ceiling = capacity
        if own:
            if wake is not None and now > wake:
                # The controller's rate is its path model: make up what a late wake-up missed.
                catch_up = rate * min(now - wake, MAX_CATCH_UP)
                ceiling = max(capacity, min(capacity + catch_up, MAX_BURST_CWND_FRACTION * window))
            ceiling = max(ceiling, self._tokens)  # made-up tokens survive the next look at the bucket
        else:
            # RFC 9002 §7.7: bursts up to the initial window; a pause (idle, application- or
            # window-limited) refills the bucket that far, so a round after it is not spread thin.
            initial = self._initial_window
            ceiling = initial if initial > capacity else capacity
        last = self._last_at
        if last is None:
            tokens = capacity
        else:
            elapsed = now - last
            tokens = self._tokens + rate * (elapsed if elapsed > 0.0 else 0.0)
            if ceiling < tokens:
                tokens = ceiling
        self._tokens = tokens
        self._last_at = now
        # A packet larger than the whole bucket (a PMTU probe) leaves once the bucket is full; the
        # bucket then goes negative. Waiting for more tokens than it can hold would wait forever.
        if tokens + _SLACK_BYTES >= (capacity if capacity < size else size):
            return True
        # Refused: remember when the wake-up is due, so a late one can be made up (see above).
        self._wake_at = self.next_send_at(size)
        return False

    def allows_again(
        self, now: float, size: int, congestion: CongestionController, rtt: RttEstimator
    ) -> bool:
        """:meth:`allows` for the next packet of a train, with the same answer, cheaper.

        At the instant of the last :meth:`allows` that let a packet through, with a rate that came from
        an unchanged congestion window (sending moves neither the window nor the RTT, and the window
        gain changes only on ACKs and losses), the bucket gains nothing and loses only what
        :meth:`on_sent` charged: the answer is the bucket's. Anything else, and every refusal (which
        remembers its wake-up), goes through :meth:`allows`."""
        window = self._steady_window
        if (
            self._last_at == now
            and self._wake_at is None
            and window is not None
            and window == congestion.congestion_window
            and (math.isinf(self.rate) or self._tokens + _SLACK_BYTES >= min(size, self.burst_bytes))
        ):
            return True
        return self.allows(now, size, congestion, rtt)

    def train_room(
        self, now: float, size: int, congestion: CongestionController, rtt: RttEstimator, *, again: bool
    ) -> float:
        """:meth:`allows` (``again``: :meth:`allows_again`) for a ``size``-byte packet of a train, and
        how far the answer stretches: 0.0 if it may not leave now (the refusal and its wake-up as
        :meth:`allows` keeps them); else the bytes that may leave now, this packet's included, before
        the pacer must be asked again (RFC 9002 §7.7).

        A train that sends its packets at this instant, no larger than that in all, and charges them
        with :meth:`on_sent` before it asks again, gets the answers :meth:`allows_again` would give per
        packet (its reasoning: the bucket then only loses what is charged, and a packet goes while
        ``tokens + slack >= min(size, burst)``; ``size`` never exceeds the minimum). With a rate of the
        controller's own, which may move as packets leave, the answer covers this packet alone."""
        if not (self.allows_again if again else self.allows)(now, size, congestion, rtt):
            return 0.0
        rate = self.rate
        if math.isinf(rate):
            return rate
        if self._steady_window is None:
            return float(size)
        room = self._tokens + _SLACK_BYTES
        return room if room > size else float(size)

    def on_sent(self, size: int, now: float) -> None:
        """Charge ``size`` bytes just sent (the bucket may go negative after a probe or a large packet)."""
        if self._last_at is None or math.isinf(self.rate):
            return
        self._tokens -= size

    def next_send_at(self, size: int) -> float:
        """When a ``size``-byte packet will be allowed, if the rate does not change (after a refusal);
        without side effects (the connection's timer asks it as often as it likes).

        Always at least one granularity after the last :meth:`allows` call (and always later than it,
        so a timer armed here moves time on): a driver whose timers cannot fire sooner then never wakes
        up to find the bucket still short, and the wait lets a burst of ``rate * granularity`` out.
        """
        last = self._last_at if self._last_at is not None else 0.0
        if math.isinf(self.rate):
            return last
        wait = (min(size, self.burst_bytes) - self._tokens) / self.rate
        return max(last + wait, last + self.granularity, math.nextafter(last, math.inf))
