// jsdom lacks these; the router's scroll behaviour calls scrollTo.
if (typeof window !== 'undefined') window.scrollTo = (() => undefined) as typeof window.scrollTo
