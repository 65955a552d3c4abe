import Decoding
import PlannedEffects

extension DeliveryLog {
    /// A flush's `buffer_processing_jobs` row, inserted `pending` with the batch that closed
    /// the buffer, then kept current by each try: `attempts`, `status` (`processing` while
    /// tries remain, then `completed` or `failed`), `error_message`; the buffer itself goes
    /// `completed` or `failed` with `processed_at` when the last try ends.
    public static let bufferProcessingJob = DeliveryLog(
        key: "buffer_processing_job", table: TableName(schema: "public", name: "buffer_processing_jobs"),
        recordFragment: """
            buffer_jobs AS (
                UPDATE public.buffer_processing_jobs j
                SET attempts = u.attempt, error_message = u.error, updated_at = now(),
                    status = CASE u.status WHEN 'succeeded' THEN 'completed' WHEN 'dead' THEN 'failed' ELSE 'processing' END
                FROM updated u
                WHERE u.report ? 'buffer_processing_job'
                  AND j.buffer_id = (jsonb_populate_record(NULL::public.buffer_processing_jobs, jsonb_build_object(
                                         'buffer_id', u.report->'buffer_processing_job'->>'buffer_id'))).buffer_id),
            buffers_processed AS (
                UPDATE public.message_buffer b
                SET status = CASE u.status WHEN 'succeeded' THEN 'completed' ELSE 'failed' END, processed_at = now()
                FROM updated u
                WHERE u.report ? 'buffer_processing_job' AND u.status IN ('succeeded', 'dead')
                  AND b.id = (jsonb_populate_record(NULL::public.message_buffer, jsonb_build_object(
                                  'id', u.report->'buffer_processing_job'->>'buffer_id'))).id)
            """,
        requeueFragment: """
            buffer_jobs_requeued AS (
                UPDATE public.buffer_processing_jobs j SET status = 'pending', updated_at = now()
                FROM requeued r
                WHERE r.report ? 'buffer_processing_job'
                  AND j.buffer_id = (jsonb_populate_record(NULL::public.buffer_processing_jobs, jsonb_build_object(
                                         'buffer_id', r.report->'buffer_processing_job'->>'buffer_id'))).buffer_id),
            buffers_requeued AS (
                UPDATE public.message_buffer b SET status = 'processing', processed_at = NULL
                FROM requeued r
                WHERE r.report ? 'buffer_processing_job'
                  AND b.id = (jsonb_populate_record(NULL::public.message_buffer, jsonb_build_object(
                                  'id', r.report->'buffer_processing_job'->>'buffer_id'))).id)
            """)
}

extension DeliveryReport {
    /// The `buffer_processing_jobs` row of the flush of buffer `bufferID`.
    public static func bufferProcessingJob(bufferID: String) -> DeliveryReport {
        var payload = JSONWriter(capacity: 48)
        payload.beginObject()
        payload.key("buffer_id")
        payload.string(bufferID)
        payload.endObject()
        return DeliveryReport(log: .bufferProcessingJob, payload: payload.string)
    }
}
