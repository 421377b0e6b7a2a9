// jsdom lacks these; the router's scroll behaviour calls scrollTo.
window.scrollTo = (() => undefined) as typeof window.scrollTo
