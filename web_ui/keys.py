"""Typed handles of the long-lived services, stored on the aiohttp application."""

from __future__ import annotations

import weakref

from aiohttp import web

from server.config import Config
from server.days import DayHosts
from server.mail import Mailer
from server.ownership import Ownership
from server.rooms import RoomRegistry
from storage.db import Database
from storage.invites import InviteStore

CONFIG = web.AppKey("config", Config)
DATABASE = web.AppKey("database", Database)
INVITES = web.AppKey("invites", InviteStore)
ROOMS = web.AppKey("rooms", RoomRegistry)
HOSTS = web.AppKey("hosts", DayHosts)
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
MAILER = web.AppKey("mailer", Mailer)
#: Which days this process hosts (``serve --workers N``; `server.ownership.SINGLE` alone).
OWNERSHIP = web.AppKey("ownership", Ownership)
