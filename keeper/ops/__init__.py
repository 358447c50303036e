"""Operations: reports and plots of a session, session history, fills, and `keeper doctor`."""
