class OnboardingError(Exception):
    """A plan's rule was broken; the message says what to do next, in plain English."""
