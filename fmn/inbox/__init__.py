"""Web notifications: the inbox the `web` sender fills (store), the news of new entries for the
API's live streams (events), Web Push (push, vapid) and the Atom feeds (feeds)."""
