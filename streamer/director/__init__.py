"""The director: what the host answers, in what order, and never dead air.

- ``director``: intake (moderation, injection guard) and turn-taking; the ``Director`` stage.
- ``queue``: the bounded queue of turns by class (operator > paid > questions > danmaku > idle), merging.
- ``thanks``: gifts, follows, likes and entries thanked in batches.
- ``state``: the SQLite ledger of paid messages (answered once, across restarts) and bans.
- ``moderation``: blocklists (plain, regex, pinyin), spam, bans, approve-before-speak.
- ``idle``: product scripts and timed announcements for when chat is quiet.
"""

from streamer.director.director import Director
from streamer.director.queue import DANMAKU, IDLE, OPERATOR, PAID, QUESTION, QueueItem

__all__ = ["DANMAKU", "IDLE", "OPERATOR", "PAID", "QUESTION", "Director", "QueueItem"]
