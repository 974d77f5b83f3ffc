"""What a running server owns, below the web edge: its config, the defense days it
hosts (`days.DayHosts`, one `dayhost.DayHost` each, with its `procedure` runner),
the rooms (`rooms.RoomRegistry`), the appeal service, the invite policy, the
readiness report and the day-file parser."""
