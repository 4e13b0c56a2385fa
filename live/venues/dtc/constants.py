"""DTC Protocol constants this adapter uses: message types and enum values, transcribed by hand from the
published ``DTCProtocol.h`` (``DTC::CURRENT_VERSION = 8``). Only what we send or read is here; the test
``tests/live/venues/dtc/test_dtc_constants.py`` checks each against an independent table (and against a header
file named by ``$NAVALE_DTC_HEADER``)."""

from __future__ import annotations

__all__ = [
    "ORDER_ID_LENGTH",
    "PROTOCOL_VERSION",
    "AtBidOrAsk",
    "BuySell",
    "DepthUpdateType",
    "Encoding",
    "LogonStatus",
    "MessageType",
    "OpenClose",
    "OrderStatus",
    "OrderType",
    "OrderUpdateReason",
    "PartialFillHandling",
    "RequestAction",
    "TimeInForce",
    "TradeMode",
]

PROTOCOL_VERSION = 8
ORDER_ID_LENGTH = 32  # char[32] in the binary encoding: at most 31 characters plus the terminating NUL


class MessageType:
    """Message ``Type`` numbers (uint16)."""

    LOGON_REQUEST = 1
    LOGON_RESPONSE = 2
    HEARTBEAT = 3
    LOGOFF = 5
    ENCODING_REQUEST = 6
    ENCODING_RESPONSE = 7
    MARKET_DATA_FEED_STATUS = 100
    MARKET_DATA_REQUEST = 101
    MARKET_DEPTH_REQUEST = 102
    MARKET_DATA_REJECT = 103
    MARKET_DATA_SNAPSHOT = 104
    MARKET_DEPTH_UPDATE_LEVEL = 106
    MARKET_DATA_UPDATE_TRADE = 107
    MARKET_DATA_UPDATE_BID_ASK = 108
    MARKET_DATA_UPDATE_TRADE_COMPACT = 112
    MARKET_DATA_UPDATE_BID_ASK_COMPACT = 117
    MARKET_DEPTH_REJECT = 121
    MARKET_DEPTH_SNAPSHOT_LEVEL = 122
    MARKET_DATA_UPDATE_TRADE_WITH_UNBUNDLED_INDICATOR = 137
    MARKET_DATA_UPDATE_BID_ASK_FLOAT_WITH_MILLISECONDS = 144
    SUBMIT_NEW_OCO_ORDER = 201
    CANCEL_ORDER = 203
    SUBMIT_NEW_SINGLE_ORDER = 208
    OPEN_ORDERS_REQUEST = 300
    ORDER_UPDATE = 301
    OPEN_ORDERS_REJECT = 302
    HISTORICAL_ORDER_FILLS_REQUEST = 303
    HISTORICAL_ORDER_FILL_RESPONSE = 304
    CURRENT_POSITIONS_REQUEST = 305
    POSITION_UPDATE = 306
    CURRENT_POSITIONS_REJECT = 307
    HISTORICAL_ORDER_FILLS_REJECT = 308
    TRADE_ACCOUNTS_REQUEST = 400
    TRADE_ACCOUNT_RESPONSE = 401
    USER_MESSAGE = 700
    GENERAL_LOG_MESSAGE = 701


class LogonStatus:
    LOGON_SUCCESS = 1
    LOGON_ERROR = 2
    LOGON_ERROR_NO_RECONNECT = 3
    LOGON_RECONNECT_NEW_ADDRESS = 4


class Encoding:
    BINARY_ENCODING = 0
    BINARY_WITH_VARIABLE_LENGTH_STRINGS = 1
    JSON_ENCODING = 2
    JSON_COMPACT_ENCODING = 3
    PROTOCOL_BUFFERS = 4


class TradeMode:
    TRADE_MODE_UNSET = 0
    TRADE_MODE_DEMO = 1
    TRADE_MODE_SIMULATED = 2
    TRADE_MODE_LIVE = 3


class RequestAction:
    SUBSCRIBE = 1
    UNSUBSCRIBE = 2
    SNAPSHOT = 3


class OrderStatus:
    ORDER_STATUS_UNSPECIFIED = 0
    ORDER_STATUS_ORDER_SENT = 1
    ORDER_STATUS_PENDING_OPEN = 2
    ORDER_STATUS_PENDING_CHILD = 3
    ORDER_STATUS_OPEN = 4
    ORDER_STATUS_PENDING_CANCEL_REPLACE = 5
    ORDER_STATUS_PENDING_CANCEL = 6
    ORDER_STATUS_FILLED = 7
    ORDER_STATUS_CANCELED = 8
    ORDER_STATUS_REJECTED = 9
    ORDER_STATUS_PARTIALLY_FILLED = 10


class OrderUpdateReason:
    ORDER_UPDATE_REASON_UNSET = 0
    OPEN_ORDERS_REQUEST_RESPONSE = 1
    NEW_ORDER_ACCEPTED = 2
    GENERAL_ORDER_UPDATE = 3
    ORDER_FILLED = 4
    ORDER_FILLED_PARTIALLY = 5
    ORDER_CANCELED = 6
    ORDER_CANCEL_REPLACE_COMPLETE = 7
    NEW_ORDER_REJECTED = 8
    ORDER_CANCEL_REJECTED = 9
    ORDER_CANCEL_REPLACE_REJECTED = 10


class AtBidOrAsk:
    BID_ASK_UNSET = 0
    AT_BID = 1
    AT_ASK = 2


class DepthUpdateType:
    MARKET_DEPTH_INSERT_UPDATE_LEVEL = 1
    MARKET_DEPTH_DELETE_LEVEL = 2


class OrderType:
    ORDER_TYPE_MARKET = 1
    ORDER_TYPE_LIMIT = 2
    ORDER_TYPE_STOP = 3


class TimeInForce:
    TIF_DAY = 1
    TIF_GOOD_TILL_CANCELED = 2


class BuySell:
    BUY = 1
    SELL = 2


class OpenClose:
    TRADE_UNSET = 0
    TRADE_OPEN = 1
    TRADE_CLOSE = 2


class PartialFillHandling:
    PARTIAL_FILL_UNSET = 0
    PARTIAL_FILL_HANDLING_REDUCE_QUANTITY = 1
    PARTIAL_FILL_HANDLING_IMMEDIATE_CANCEL = 2


def names(cls: type) -> dict[str, int]:
    """The ``NAME: value`` table of one constants class."""
    return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, int)}
