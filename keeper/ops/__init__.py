"""Operations: reports and plots of a session, session history, fills, `keeper doctor`, and metrics/health."""
