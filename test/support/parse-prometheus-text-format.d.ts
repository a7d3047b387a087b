// Types of parse-prometheus-text-format (it ships none): the prom2json-compatible shape it returns.
declare module 'parse-prometheus-text-format' {
  type Labels = Record<string, string>;
  export interface Sample {
    value: string;
    labels?: Labels;
  }
  export interface HistogramSample {
    buckets: Record<string, string>;
    count: string;
    sum: string;
    labels?: Labels;
  }
  export interface SummarySample {
    quantiles: Record<string, string>;
    count: string;
    sum: string;
    labels?: Labels;
  }
  export interface MetricFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: (Sample | HistogramSample | SummarySample)[];
  }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
