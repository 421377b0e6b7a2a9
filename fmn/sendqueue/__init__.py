"""The private send queue between the consumer and the senders, in one place:

    workitem     the work item and how work items travel: several to an AMQP message, split
                 again into deliveries of their own in the sender; their headers
    topology     the exchange and queues, and their declaration
    retries      a transient failure's way to the retry queue of its attempt
    deadletters  the dead-letter queues: filling, listing, replaying and discarding

The consumer publishes through `workitem.pack`; the senders consume through `workitem.split`.
"""
