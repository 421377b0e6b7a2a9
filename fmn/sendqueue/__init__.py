"""The private send queue between the consumer and the senders, in one place:

    workitem     the work item and how work items travel (several to an AMQP message)
    topology     the exchange, queues and headers, and their declaration
    redelivery   what a sender takes from its queue: the parts of a message, the attempt
                 number, retries, and the memory that keeps a redelivery from sending twice
    deadletters  the dead-letter queues: filling, listing, replaying and discarding

The consumer publishes through `workitem.pack`; the senders consume through `redelivery`.
"""
